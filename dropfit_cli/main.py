"""``dropfit``: train, follow, predict and inspect Dropfit models from a terminal.

Every command talks to the local stack when it is up (``.local/outputs.json``, or
``$DROPFIT_STATE_DIR``), or to a deployed stack with ``--stack NAME [--region R]``. Imports stay
light (click here; botocore, boto3 and rich only inside the commands that use them), so that
``dropfit --help`` and ``dropfit predict`` start fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dropfit_cli.api import Response
    from dropfit_cli.follow import RunWatch
    from dropfit_cli.output import Output
    from dropfit_cli.target import Target

# Exit statuses (README, "The dropfit command"): 2 is click's usage error.
OK, FAILED, USAGE, NO_STACK, TIMED_OUT, INTERRUPTED = 0, 1, 2, 3, 4, 130
DEFAULT_TIMEOUT_S = 3600.0  # a SageMaker training job plus an endpoint take minutes


class Failure(click.ClickException):
    """A command that ran but did not succeed: its message and exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = code


def stack_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--stack``, ``--region``, ``--token`` and ``--json``; the command gets ``out`` and
    ``target`` (a callable: a command resolves its stack only when it needs it)."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.option(
        "--token",
        envvar="DROPFIT_TOKEN",
        metavar="JWT",
        help="Bearer token for a stack deployed with ApiAuth=JWT (or $DROPFIT_TOKEN).",
    )
    @click.option("--region", metavar="REGION", help="The deployed stack's region.")
    @click.option(
        "--stack",
        metavar="NAME",
        help="A deployed stack (CloudFormation); default: the local stack when it is up.",
    )
    @functools.wraps(command)
    def wrapper(
        stack: str | None, region: str | None, token: str | None, as_json: bool, **kwargs: Any
    ) -> Any:
        from dropfit_cli.output import Output

        out = Output(as_json)

        def target() -> Target:
            from dropfit_cli.target import resolve

            return resolve(stack, region, token)

        with _failures():
            return command(out=out, target=target, **kwargs)

    return wrapper


def follow_options(following: str, no_wait: str) -> Callable[[Callable[..., Any]], Any]:
    """``--timeout`` (seconds to follow ``following``) and ``--no-wait`` (its help: ``no_wait``),
    for a command that follows a run until it serves."""

    def options(command: Callable[..., Any]) -> Any:
        command = click.option("--no-wait", is_flag=True, help=no_wait)(command)
        return click.option(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT_S,
            show_default=True,
            help=f"Seconds to follow {following}.",
        )(command)

    return options


def _unless_ready(watch: RunWatch, run: str, still: str, where: str, timeout: float) -> None:
    """Exit with the reason unless the followed ``run`` serves: timed out while ``still``
    (``where`` shows the rest), or failed, rejected or superseded."""
    if watch.outcome is None:
        raise Failure(f"{still} after {timeout:.0f} s; `{where}` shows where it is", TIMED_OUT)
    if watch.outcome != "ready":
        raise Failure(f"run {run} {watch.outcome}: {watch.reason or 'no reason given'}")


@contextmanager
def _failures() -> Iterator[None]:
    """Map what can go wrong outside a command's own checks to a message and an exit status."""
    from dropfit_cli.api import ApiAuthError
    from dropfit_cli.follow import FollowError
    from dropfit_cli.target import NoTarget

    try:
        yield
    except (NoTarget, ApiAuthError) as error:
        raise Failure(str(error), NO_STACK) from None
    except FollowError as error:
        raise Failure(str(error)) from None
    except OSError as error:
        raise Failure(f"cannot reach the stack: {error}", NO_STACK) from None
    except KeyboardInterrupt:
        raise Failure("interrupted", INTERRUPTED) from None


def _answer(response: Response, what: str) -> Any:
    """The JSON of a 2xx answer; otherwise a :class:`Failure` with the API's own message."""
    if response.ok:
        return response.json()
    try:
        error = response.json()["error"]
        message = f"{error['message']} ({response.status} {error['code']})"
    except (ValueError, KeyError, TypeError):
        message = f"{response.status} {response.text[:300]}"
    retry = response.headers.get("retry-after")
    if retry:
        message += f"; retry after {retry} s"
    raise Failure(f"{what}: {message}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Dropfit: drop a CSV, get a trained k-NN model behind an HTTPS API.

    Commands use the local stack when it is up (`dropfit up`), or a deployed stack with
    --stack NAME. Exit status: 0 done, 1 failed (the reason is printed), 2 bad usage,
    3 no stack to talk to, 4 timed out, 130 interrupted.
    """


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The model's name (the `name` option; default: from the file's name).")
@click.option("--label", help="The label column (default: the only text column, else the last).")
@click.option("--k", help="Neighbours (default: the stack's DefaultK).")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any other per-upload option (README), e.g. -o test_fraction=0.2 "
    "-o hp-index_metric=COSINE. Repeatable.",
)
@follow_options("the run", no_wait="Upload and return without following the run.")
@stack_options
def train(
    *,
    out: Output,
    target: Callable[[], Target],
    file: Path,
    name: str | None,
    label: str | None,
    k: str | None,
    options: tuple[str, ...],
    timeout: float,
    no_wait: bool,
) -> None:
    """Upload FILE with its options, follow its run to a served model, show how to predict.

    The progress shows each stage (formatting, training, deploying, ready) and its time; a
    refused upload ends with the reason and exit status 1.
    """
    from dropfit_cli import training

    metadata = training.metadata(name=name, label=label, k=k, options=options)
    stack = target()
    upload = training.upload(stack, file, metadata=metadata)
    if no_wait:
        out.result(
            {"model": upload.model, "key": upload.key, "status": "uploaded"},
            f"uploaded {file} as model {upload.model}; follow it with "
            f"`dropfit status {upload.model}`",
        )
        return
    watch = out.follow(stack, upload, timeout=timeout)
    summary = training.summary(stack, upload, watch)
    out.train_summary(summary)
    still = f"model {upload.model} is still {watch.stage}"
    _unless_ready(watch, str(watch.run), still, f"dropfit status {upload.model}", timeout)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("model")
@click.argument("values", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--file",
    "-f",
    "rows",
    type=click.File("rb"),
    help="CSV rows to predict (an optional header names the columns); '-' reads stdin.",
)
@click.option("--neighbors", is_flag=True, help="Add each prediction's nearest training points.")
@stack_options
def predict(
    *,
    out: Output,
    target: Callable[[], Target],
    model: str,
    values: tuple[str, ...],
    rows: Any,
    neighbors: bool,
) -> None:
    """Predict with MODEL: one instance as VALUES (in training order), or CSV rows from
    --file FILE or stdin (a lone '-')."""
    from dropfit_cli.instances import request_body

    if values == ("-",):
        if rows is not None:
            raise click.UsageError("give VALUES, --file or '-', not several")
        values, rows = (), click.get_binary_stream("stdin")
    try:
        body, content_type = request_body(values, rows.read() if rows is not None else None)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    query = {"neighbors": "true"} if neighbors else None
    response = (
        target()
        .api()
        .post(
            f"models/{model}/predict",
            body=body,
            query=query,
            headers={"Content-Type": content_type},
        )
    )
    out.predictions(_answer(response, f"predict with {model}"))


@cli.command()
@stack_options
def models(*, out: Output, target: Callable[[], Target]) -> None:
    """List the models, their status and the runs they serve."""
    out.models(_answer(target().api().get("models"), "list models"))


@cli.command()
@click.argument("model")
@stack_options
def status(*, out: Output, target: Callable[[], Target], model: str) -> None:
    """Show MODEL's status, endpoint, features, classes, metrics and latest run."""
    out.status(_answer(target().api().get(f"models/{model}"), f"model {model}"))


@cli.command()
@click.argument("model")
@click.option("--open", "open_page", is_flag=True, help="Open the report's page in a browser.")
@stack_options
def report(*, out: Output, target: Callable[[], Target], model: str, open_page: bool) -> None:
    """Show the validation report of the run MODEL serves: figures, baseline, warnings, and
    its page's link (--open opens it)."""
    api = target().api()
    document = _answer(api.get(f"models/{model}/report"), f"report of {model}")
    link = _answer(api.get(f"models/{model}"), f"model {model}").get("report") or {}
    out.report(document, link)
    if open_page:
        import webbrowser

        if not link.get("html_url") or not webbrowser.open(link["html_url"]):
            raise Failure("cannot open the report's page here: open the link above instead")


@cli.command()
@click.argument("model")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking first.")
@stack_options
def delete(*, out: Output, target: Callable[[], Target], model: str, yes: bool) -> None:
    """Delete MODEL: its endpoint, endpoint configs and SageMaker models (its training jobs
    stop). Its uploads, formatted data and run history stay; a new upload creates it anew."""
    stack = target()
    if not yes:
        # On stderr: stdout stays the command's answer (--json).
        click.confirm(
            f"Delete model {model} on the {stack.name} stack? Its endpoint stops serving",
            abort=True,
            err=True,
        )
    out.deleted(_answer(stack.api().delete(f"models/{model}"), f"delete {model}"))


@cli.command()
@click.argument("model")
@click.option(
    "--run",
    metavar="RUN",
    help="The kept run to serve (`dropfit runs MODEL` lists them); default: the run that "
    "served before the serving one.",
)
@follow_options("the redeployment", no_wait="Ask for the rollback and return at once.")
@stack_options
def rollback(
    *,
    out: Output,
    target: Callable[[], Target],
    model: str,
    run: str | None,
    timeout: float,
    no_wait: bool,
) -> None:
    """Serve a kept run of MODEL again (its endpoint is updated in place; nothing retrains),
    and follow the redeployment until the run serves."""
    from dropfit_cli.follow import ROLLBACK_STAGES, RunWatch, rollback_view

    stack = target()
    asked = stack.api().post(f"models/{model}/rollback", json={"run": run} if run else None)
    answer = _answer(asked, f"roll back {model}")
    target_run, replaces = answer["run"], answer.get("replaces")
    if no_wait:
        out.result(
            answer,
            f"rolling back model {model} to run {target_run} (replaces {replaces}); "
            f"`dropfit status {model}` shows when it serves",
        )
        return
    out.say(f"rolling back model [bold]{model}[/] to run {target_run} (replaces {replaces})")
    watch = RunWatch(is_new=lambda seen: seen == target_run, stages=ROLLBACK_STAGES)
    out.follow_run(
        stack,
        model,
        watch,
        timeout=timeout,
        path=f"models/{model}/runs",
        view=rollback_view(target_run, replaces),
    )
    summary = {
        "model": model,
        "run": target_run,
        "replaces": replaces,
        "outcome": watch.outcome or "timed out",
        "stage_seconds": watch.stage_seconds(),
        **({"reason": watch.reason} if watch.reason else {}),
    }
    out.rolled_back(summary)
    still = f"run {target_run} is still deploying"
    _unless_ready(watch, target_run, still, f"dropfit runs {model}", timeout)


@cli.command()
@click.argument("model")
@stack_options
def runs(*, out: Output, target: Callable[[], Target], model: str) -> None:
    """List MODEL's runs, newest first: status, when deployed, whether it can be rolled back
    to (its endpoint config and model are kept) and why it ended."""
    out.runs(_answer(target().api().get(f"models/{model}/runs"), f"runs of {model}"))


@cli.command()
@click.option(
    "--stack",
    metavar="NAME",
    help="A deployed stack (CloudFormation); default: the local stack when it is up.",
)
@click.option("--region", metavar="REGION", help="The deployed stack's region.")
@click.option("--dry-run", is_flag=True, help="List what would go; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def destroy(stack: str | None, region: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Remove every SageMaker resource the stack created (stop its training jobs, delete its
    endpoints, endpoint configs and models), then say how to delete the stack itself
    (`sam delete`) and its retained bucket and table. Another stack's resources stay."""
    from dropfit_cli import destroy as sweeping
    from dropfit_cli.output import Output

    out = Output(as_json)
    with _failures():
        if not dry_run and not yes:
            click.confirm(
                f"Delete every endpoint, endpoint config and SageMaker model of the "
                f"{stack or 'local'} stack? Its models stop serving",
                abort=True,
                err=True,
            )
        try:
            if stack:
                summary = sweeping.destroy(stack, region, dry_run=dry_run)
            else:
                summary = _destroy_local(sweeping, dry_run)
        except sweeping.DestroyError as error:
            raise Failure(str(error), NO_STACK) from None
        out.destroyed(summary, dry_run=dry_run)


def _destroy_local(sweeping: Any, dry_run: bool) -> Any:
    """``dropfit destroy`` on the local stack: its outputs.json names what CloudFormation would."""
    from dropfit_cli.target import Target, local_outputs, state_dir

    outputs = local_outputs(state_dir())
    stack = Target("local", outputs, str(outputs.get("Region", "us-east-1")))
    clients = sweeping.Clients(
        cloudformation=None, sagemaker=stack.client("sagemaker"), dynamodb=stack.client("dynamodb")
    )
    return sweeping.sweep("local", outputs, clients, dry_run=dry_run, local=True)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def up(context: click.Context) -> None:
    """Start the local stack in the foreground (Ctrl-C stops it); options as
    `python -m dropfit_local up --help`."""
    sys.exit(_local_stack_command("up", context.args))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def demo(context: click.Context) -> None:
    """Run the tutorial on a fresh local stack: upload iris, follow it, predict, print the
    table (the Lambdas' log goes to a file under .local/)."""
    sys.exit(_local_stack_command("demo", context.args))


def _local_stack_command(command: str, args: list[str]) -> int:
    try:
        from dropfit_local.__main__ import main
    except ImportError as error:
        raise Failure(
            f"`dropfit {command}` runs the local stack, which needs a Dropfit clone with its "
            f"development environment (`make install` there): {error}",
            NO_STACK,
        ) from None
    return main([command, *args])


if __name__ == "__main__":
    cli()
