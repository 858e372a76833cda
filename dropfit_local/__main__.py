"""``python -m dropfit_local up|demo|token``: the local stack in the foreground, the tutorial on
it, or a token for a running stack deployed with ``ApiAuth=JWT``.

``up`` runs until Ctrl-C (SIGINT) or SIGTERM and prints how to use it; ``demo`` starts a stack
(on free ports unless told otherwise), runs the tutorial and stops it. Port 0 means "any free
port"; the ports actually used are in ``<state-dir>/outputs.json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from dropfit_local import demo
from dropfit_local.authorizers import LocalIssuer
from dropfit_local.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    DEFAULT_SAGEMAKER_PORT,
    DEFAULT_STACK_NAME,
    ROOT,
    JoinedStack,
    LocalStack,
)
from dropfit_local.template import TemplateError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dropfit_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, default_ports in (
        ("up", "run the local stack in the foreground until Ctrl-C", True),
        ("demo", "run the tutorial on a fresh local stack, then stop it", False),
    ):
        command = commands.add_parser(name, help=help_text)
        for option, default in (
            ("--aws-port", DEFAULT_AWS_PORT),
            ("--api-port", DEFAULT_API_PORT),
            ("--sagemaker-port", DEFAULT_SAGEMAKER_PORT),
        ):
            command.add_argument(
                option,
                type=int,
                default=default if default_ports else 0,
                help=f"port on 127.0.0.1 (default {default if default_ports else 'any free one'})",
            )
        command.add_argument(
            "--parameter",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="override a template parameter (repeatable), e.g. DefaultK=3",
        )
        command.add_argument(
            "--state-dir",
            type=Path,
            default=ROOT / ".local" if default_ports else None,
            help="where outputs.json goes (default: "
            + (".local/" if default_ports else "a temporary folder, so a running `up` keeps its")
            + ")",
        )
        command.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1). For `sam local invoke` containers, "
            "the docker0 gateway (e.g. 172.17.0.1); never every interface",
        )
        command.add_argument(
            "--concurrency",
            action="append",
            default=[],
            metavar="[FUNCTION=]N",
            help="runtime processes per function (each serves one invocation at a time; "
            "default 1); FUNCTION=N sets one function's, by logical id or log label, e.g. "
            "predict=4 (repeatable)",
        )
        command.add_argument(
            "--on-demand",
            action="store_true",
            help="start each function's runtime at its first invocation (a cold start), as "
            "Lambda's on-demand environments do; by default they initialise when the stack "
            "starts, as with provisioned concurrency",
        )
        command.add_argument(
            "--stack-name",
            default=DEFAULT_STACK_NAME,
            help=f"AWS::StackName (default {DEFAULT_STACK_NAME}): it names the local resources "
            "and, through the stack id, the stack's SageMaker name prefix",
        )
        command.add_argument(
            "--join",
            type=Path,
            metavar="OUTPUTS_JSON",
            help="TEST ONLY: use the moto and the local SageMaker of the running stack whose "
            "outputs.json this is instead of starting them, as a second stack in the same "
            "account and region (give it another --stack-name)",
        )
        command.add_argument(
            "--fault-injection",
            action="store_true",
            help="TEST ONLY: let tests make functions crash and endpoint deployments fail "
            "through the faults folder (dropfit_local/faults.py, docs/local-stack.md)",
        )
    token = commands.add_parser(
        "token", help="print a JWT of a running stack's local issuer (ApiAuth=JWT)"
    )
    token.add_argument("--state-dir", type=Path, default=ROOT / ".local", help="the stack's")
    token.add_argument("--audience", help="aud (default: the stack's first JwtAudience)")
    token.add_argument("--subject", default="local-user", help="sub (default local-user)")
    token.add_argument("--expires-in", type=float, default=3600.0, help="seconds (default 3600)")
    return parser


def _token(args: argparse.Namespace) -> int:
    """Mint a token with the key a running ``ApiAuth=JWT`` stack wrote to its state folder."""
    outputs_path = args.state_dir / "outputs.json"
    if not outputs_path.is_file():
        print(f"no {outputs_path}: start the stack first (make up)", file=sys.stderr)
        return 2
    outputs = json.loads(outputs_path.read_text())
    if outputs.get("ApiAuth") != "JWT":
        print(f"the stack's ApiAuth is {outputs.get('ApiAuth')}, not JWT", file=sys.stderr)
        return 2
    issuer = LocalIssuer.load(
        outputs["JwtIssuer"], Path(outputs["JwtPrivateKeyFile"]), Path(outputs["JwksFile"])
    )
    audience = args.audience or str(outputs["JwtAudience"]).split(",")[0]
    print(issuer.mint(audience, subject=args.subject, expires_in=args.expires_in))
    return 0


def _concurrency(items: list[str]) -> tuple[int, dict[str, int]]:
    """``--concurrency`` values: the default count, and the counts of named functions."""
    default, named = 1, {}
    for item in items:
        name, separator, count = item.rpartition("=")
        if not count.isdigit() or int(count) < 1 or (separator and not name):
            raise SystemExit(f"--concurrency {item!r}: expected N or FUNCTION=N with N >= 1")
        if separator:
            named[name] = int(count)
        else:
            default = int(count)
    return default, named


def _joined(outputs_path: Path) -> JoinedStack:
    """What ``--join`` needs from the running stack's outputs.json."""
    try:
        outputs = json.loads(outputs_path.read_text())
        return JoinedStack(
            stack_name=outputs["StackName"],
            aws_endpoint_url=outputs["AwsEndpointUrl"],
            sagemaker_endpoint_url=outputs["SageMakerEndpointUrl"],
        )
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(
            f"--join {outputs_path}: not a running stack's outputs.json ({error})"
        ) from None


def _stack_options(args: argparse.Namespace) -> dict[str, Any]:
    parameters = {}
    for item in args.parameter:
        name, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"--parameter {item!r}: expected NAME=VALUE")
        parameters[name] = value
    default_concurrency, function_concurrency = _concurrency(args.concurrency)
    return {
        "aws_port": args.aws_port,
        "api_port": args.api_port,
        "sagemaker_port": args.sagemaker_port,
        "parameters": parameters,
        "state_dir": args.state_dir,
        "runtime_concurrency": default_concurrency,
        "function_concurrency": function_concurrency,
        "fault_injection": args.fault_injection,
        "stack_name": args.stack_name,
        "join": _joined(args.join) if args.join else None,
        "host": args.host,
        "provisioned": not args.on_demand,
    }


def _api_usage(stack: LocalStack, api: str, region: str) -> list[str]:
    """How to call the HTTP API with its ``ApiAuth``: signed, with a token, or as is."""
    body = "-H 'content-type: application/json' -d '{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}'"
    mode = stack.api_auth.mode
    if mode == "IAM":
        auth = f'--aws-sigv4 "aws:amz:{region}:execute-api" --user testing:testing '
        intro = "HTTP API: ApiAuth=IAM, sign with the local keys testing/testing (SigV4):"
    elif mode == "JWT":
        auth = '-H "Authorization: Bearer $TOKEN" '
        intro = (
            "HTTP API: ApiAuth=JWT, a token of the local issuer: "
            f"TOKEN=$(python -m dropfit_local token --state-dir {stack.state_dir})"
        )
    else:
        auth, intro = "", "HTTP API: ApiAuth=NONE, open to anyone who can reach it:"
    return [
        f"  # {intro}",
        f"  curl {auth}{api}/models/my",
        f"  curl {auth}-X POST {api}/models/my/predict {body}",
    ]


def _usage(stack: LocalStack) -> str:
    aws, api, bucket = stack.aws_endpoint_url, stack.api_url, stack.bucket_name
    incoming = stack.incoming_prefix
    region = stack.outputs.get("Region", "us-east-1")
    return "\n".join(
        [
            "",
            "Dropfit local stack is up (Ctrl-C stops it).",
            f"  AWS endpoint (S3, EventBridge, SQS, DynamoDB, SNS): {aws}",
            f"  SageMaker endpoint:                                 {stack.sagemaker_url}",
            f"  bucket:                                             {bucket}",
            f"  HTTP API:                                           {api}",
            f"  outputs:                                            {stack.outputs_path}",
            "",
            "Try it:",
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
            f"AWS_DEFAULT_REGION={region}",
            f"  aws --endpoint-url {aws} s3 cp my.csv s3://{bucket}/{incoming}my.csv "
            "--metadata label=Species",
            *_api_usage(stack, api, region),
            "",
            *_sam_local_usage(stack),
            "",
        ]
    )


def _sam_local_usage(stack: LocalStack) -> list[str]:
    """How to run the handlers in sam local's containers against this stack (with Docker)."""
    if not stack.sam_env_path.exists():
        return [f"With Docker (sam local): {stack.sam_local_note()}"]
    options = (
        f"--env-vars {stack.sam_env_path} --add-host host.docker.internal:host-gateway "
        "--skip-pull-image"
    )
    upload_event = stack.events_dir / "FormatFunction.ObjectCreated.json"
    return [
        "With Docker, the handlers in sam local's containers against this stack "
        "(`make build-local` first; docs/local-stack.md):",
        f"  sam local invoke PredictFunction -e events/api-list-models.json {options}",
        f"  sam local invoke FormatFunction -e {upload_event} {options}   # after an upload",
        f"  sam local start-api --port 3001 --warm-containers EAGER {options}",
    ]


def _up(options: dict[str, Any]) -> int:
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = LocalStack(**options)
    try:
        stack.start()
        print(_usage(stack), flush=True)
        while not stopping.wait(0.5):
            pass
        print("\nstopping ...", flush=True)
    finally:
        stack.stop()
    print("stopped.", flush=True)
    return 0


def _demo(options: dict[str, Any]) -> int:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM unwinds like Ctrl-C, so the stack's context manager stops everything.
    signal.signal(signal.SIGTERM, interrupt)
    return demo.main(options)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    options = _stack_options(args)
    try:
        return _up(options) if args.command == "up" else _demo(options)
    except KeyboardInterrupt:
        return 130
    except TemplateError as error:
        print(f"cannot read the template: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"cannot start the local stack: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot start the local stack: {error}", file=sys.stderr)
        print("a port may be in use: pick others, or 0 for any free one", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
