"""What ``dropfit`` prints: rich tables and a live progress display for people, JSON with
``--json`` for scripts (one document on stdout, nothing else)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from dropfit_cli.follow import RunWatch, follow

if TYPE_CHECKING:
    from dropfit_cli.target import Target
    from dropfit_cli.training import Upload

POLL_SECONDS = {True: 0.2, False: 2.0}  # local stack, deployed stack
_MARK = {"done": "[green]✓[/]", "now": "[yellow]…[/]", "todo": " ", "failed": "[red]✗[/]"}


class Output:
    """Human output on a rich console, or JSON documents (``as_json``)."""

    def __init__(self, as_json: bool, console: Console | None = None) -> None:
        self.as_json = as_json
        self.console = console or Console(highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        """A line for people (nothing in JSON mode)."""
        if not self.as_json:
            self.console.print(text)

    def result(self, document: Any, text: str) -> None:
        """The command's answer: ``document`` as JSON, or ``text`` for people."""
        if self.as_json:
            self.console.print_json(json.dumps(document))
        else:
            self.console.print(text)

    # -- train

    def follow(self, target: Target, upload: Upload, *, timeout: float) -> RunWatch:
        """Follow the run of ``upload`` with a live display (a line per stage off a terminal)."""
        watch = upload.watch(target.incoming_prefix)
        self.say(f"uploaded {upload.file} → model [bold]{upload.model}[/] ({upload.key})")
        return self.follow_run(target, upload.model, watch, timeout=timeout)

    def follow_run(
        self, target: Target, model: str, watch: RunWatch, *, timeout: float, **reading: Any
    ) -> RunWatch:
        """Poll the model until ``watch``'s run ends, showing its stages as they go
        (``reading``: follow's ``path`` and ``view``)."""
        poll = POLL_SECONDS[target.is_local]
        if self.as_json:
            return follow(target.api(), model, watch, timeout=timeout, poll_seconds=poll, **reading)
        if not self.console.is_terminal:
            return follow(
                target.api(),
                model,
                watch,
                timeout=timeout,
                poll_seconds=poll,
                on_change=self._stage_line(),
                **reading,
            )
        from rich.live import Live

        with Live(stage_table(watch), console=self.console, auto_refresh=False) as live:

            def refresh(watch: RunWatch) -> None:
                live.update(stage_table(watch), refresh=True)

            follow(
                target.api(),
                model,
                watch,
                timeout=timeout,
                poll_seconds=poll,
                on_change=refresh,
                on_tick=refresh,
                **reading,
            )
        return watch

    def _stage_line(self) -> Callable[[RunWatch], None]:
        """A line per stage, in order, when it is first seen (and one for a run that ends)."""
        shown: list[str] = []

        def line(watch: RunWatch) -> None:
            for stage in watch.stages:
                if stage in watch.seen and stage not in shown:
                    self.console.print(f"  {watch.seen[stage]:6.2f} s  {stage}")
                    shown.append(stage)
            if watch.outcome not in (None, "ready", *shown):
                elapsed = time.monotonic() - watch.started
                self.console.print(f"  {elapsed:6.2f} s  {watch.outcome}")
                shown.append(str(watch.outcome))

        return line

    def train_summary(self, summary: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(summary))
            return
        stages = ", ".join(f"{name} {s:.2f} s" for name, s in summary["stage_seconds"].items())
        self.console.print(f"run {summary['run']}: {summary['outcome']} ({stages})")
        if summary.get("metrics"):
            metrics = ", ".join(f"{name} {value}" for name, value in summary["metrics"].items())
            self.console.print(f"metrics: {metrics}")
        if summary.get("outcome") == "ready":
            self.console.print(f"report: `dropfit report {summary['model']}` (once written)")
        if summary.get("predict"):
            self.console.print(f"try it: [bold]{summary['predict']}[/]")

    def report(self, document: dict[str, Any], link: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(document))
            return
        self.console.print(
            f"validation report of {document['model']}, run {document['run']} "
            f"({document['predictor_type']}, the endpoint's own answers)"
        )
        self.console.print(f"  metrics:  {_scalars(document['metrics'])}")
        self.console.print(f"  baseline: {_scalars(document['baseline'])}")
        for warning in document.get("warnings") or []:
            self.console.print(f"  [yellow]warning[/]: {warning['message']}")
        if link.get("html_url"):
            self.console.print(
                f"  page (valid {link['expires_in']} s): {link['html_url']}", soft_wrap=True
            )

    # -- predict, models, status

    def predictions(self, answer: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(answer))
            return
        table = Table(title=f"{answer['model']} (run {answer['run']})", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("label")
        with_neighbours = any("neighbors" in p for p in answer["predictions"])
        if with_neighbours:
            table.add_column("nearest training points (label distance)")
        for number, prediction in enumerate(answer["predictions"], 1):
            cells = [str(number), str(prediction["label"])]
            if with_neighbours:
                cells.append(
                    ", ".join(
                        f"{n['label']} {_distance(n['distance'])}"
                        for n in prediction.get("neighbors", [])
                    )
                )
            table.add_row(*cells)
        self.console.print(table)

    def models(self, answer: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(answer))
            return
        if not answer["models"]:
            self.console.print("no models yet: `dropfit train FILE` makes one")
            return
        table = Table()
        for column in ("model", "serving run", "latest run", "updated"):
            table.add_column(column, overflow="fold")
        for model in answer["models"]:
            table.add_row(
                model["model"],
                _run_id(model.get("deployed_run")),
                _run_id(model.get("latest_run")),
                str(model.get("updated_at") or "-"),
            )
        self.console.print(table)

    def status(self, description: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(description))
            return
        endpoint = description.get("endpoint") or {}
        latest = description.get("latest_run") or {}
        deployed = description.get("deployed_run") or {}
        rows = [
            ("status", description.get("status")),
            ("endpoint", f"{endpoint.get('name')} ({endpoint.get('status')})"),
            ("serving run", deployed.get("run")),
            ("latest run", f"{latest.get('run')} ({latest.get('status')})" if latest else None),
            ("reason", latest.get("reason") or endpoint.get("failure_reason")),
            ("predictor", description.get("predictor_type")),
            ("features", ", ".join(description.get("features") or [])),
            ("classes", ", ".join(description.get("classes") or [])),
            ("metrics", _metrics(description.get("metrics"))),
            ("report", (description.get("report") or {}).get("html_url")),
        ]
        table = Table(show_header=False, title=description.get("model"), title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in rows:
            if value:
                table.add_row(name, str(value))
        self.console.print(table)

    # -- delete, rollback, runs, destroy

    def deleted(self, answer: dict[str, Any]) -> None:
        removed = len(answer.get("removed_runs") or [])
        stopped = ", ".join(answer.get("stopped_training_jobs") or []) or "none"
        self.result(
            answer,
            f"deleted model {answer['model']}: endpoint {answer['endpoint']}, the endpoint "
            f"configs and SageMaker models of {removed} run(s) removed, training jobs stopped: "
            f"{stopped}. Its uploads, data and run history stay; uploading "
            f"incoming/{answer['model']}.csv again creates it anew.",
        )

    def rolled_back(self, summary: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(summary))
            return
        seconds = ", ".join(f"{name} {s:.2f} s" for name, s in summary["stage_seconds"].items())
        if summary["outcome"] == "ready":
            self.console.print(
                f"run {summary['run']} serves model {summary['model']} again, in place of "
                f"{summary['replaces']} ({seconds})"
            )
        else:
            self.console.print(f"run {summary['run']}: {summary['outcome']} ({seconds})")

    def runs(self, history: dict[str, Any]) -> None:
        if self.as_json:
            self.console.print_json(json.dumps(history))
            return
        table = Table(title=f"{history['model']} ({history['status']})", title_justify="left")
        for column in ("run", "status", "created", "deployed", "can roll back", "reason"):
            table.add_column(column, overflow="fold")
        for run in history["runs"]:
            serving = run["run"] == history.get("deployed_run")
            table.add_row(
                f"[bold]{run['run']}[/]" if serving else run["run"],
                str(run.get("status")) + (" (serving)" if serving else ""),
                str(run.get("created_at") or "-"),
                str(run.get("deployed_at") or "-"),
                "yes" if run.get("can_roll_back") else "no",
                str(run.get("reason") or ""),
            )
        self.console.print(table)

    def destroyed(self, summary: Any, *, dry_run: bool) -> None:
        """A :class:`dropfit_cli.destroy.DestroySummary`."""
        from dropfit_cli.destroy import describe

        self.result({**summary.as_dict(), "dry_run": dry_run}, describe(summary, dry_run))


def _scalars(figures: Any) -> str:
    """The plain numbers of a metrics object (tables such as per_class are left to the page)."""
    if not isinstance(figures, dict):
        return str(figures)
    return ", ".join(
        f"{name} {value:.4g}" for name, value in figures.items() if isinstance(value, int | float)
    )


def stage_table(watch: RunWatch) -> Table:
    """The progress display: each stage, whether it is done, its time so far."""
    seconds = watch.stage_seconds()
    table = Table(show_header=False, box=None, padding=(0, 1))
    for name in watch.stages:
        if watch.outcome not in (None, "ready") and name == watch.stage:
            mark = "failed"
        elif name in seconds and (name != watch.stage or watch.outcome == "ready"):
            mark = "done"
        elif name == watch.stage and watch.outcome is None:
            mark = "now"
        else:
            mark = "todo"
        shown = f"{seconds[name]:6.2f} s" if name in seconds else ""
        table.add_row(_MARK[mark], name, shown)
    if watch.outcome not in (None, "ready"):
        table.add_row(_MARK["failed"], str(watch.outcome), str(watch.reason or ""))
    return table


def _run_id(run: Any) -> str:
    if isinstance(run, dict):
        return str(run.get("run") or "-")
    return str(run or "-")


def _metrics(metrics: Any) -> str | None:
    return ", ".join(f"{k} {v}" for k, v in metrics.items()) if metrics else None


def _distance(distance: float | None) -> str:
    return "overflow" if distance is None else f"{distance:.4g}"
