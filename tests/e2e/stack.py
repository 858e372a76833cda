"""The local stack as a user runs it, driven only through the S3 API and HTTP.

:func:`run_stack` runs ``python -m dropfit_local up`` in a child process on free ports: moto's
backends are process-wide, so a child keeps the stack apart from the in-process moto of the other
test suites, and it ends the way a user ends it, with Ctrl-C (SIGINT). :class:`Local` holds the
running stack's outputs, boto3 clients on its endpoints and helpers for the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import requests
from botocore.credentials import Credentials

from dropfit_cli.api import ApiClient, Auth, Bearer, NoAuth, SigV4
from dropfit_local.authorizers import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
IRIS = (DATA / "iris.csv").read_bytes()
STARTUP_SECONDS = 60
RUN_SECONDS = 120


class SignedBy(requests.auth.AuthBase):
    """Authorises a ``requests`` call as the stack's ``ApiAuth`` requires (``dropfit_cli.api``
    signs or adds the token), for callers that keep their own ``requests.Session``."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        payload = body.encode() if isinstance(body, str) else bytes(body)
        headers = {str(k): str(v) for k, v in request.headers.items()}
        request.headers.update(
            self.auth.headers(str(request.method), str(request.url), headers, payload)
        )
        return request


def authorisation(outputs: dict[str, Any]) -> Auth:
    """What a caller sends to the local API that wrote ``outputs``, as its ``ApiAuth`` says."""
    mode = outputs.get("ApiAuth", "NONE")
    if mode == "IAM":
        keys = Credentials(outputs["ApiAccessKeyId"], outputs["ApiSecretAccessKey"])
        return SigV4(str(outputs["Region"]), keys)
    if mode == "JWT":
        issuer = LocalIssuer.load(
            outputs["JwtIssuer"], Path(outputs["JwtPrivateKeyFile"]), Path(outputs["JwksFile"])
        )
        return Bearer(issuer.mint(str(outputs["JwtAudience"]).split(",")[0]))
    return NoAuth()


@dataclass
class Local:
    """The running stack: its outputs, AWS clients on its endpoints, and its log."""

    outputs: dict[str, Any]
    log_path: Path
    pid: int  # the stack's process (its runtimes are its children)

    def __post_init__(self) -> None:
        self.api = str(self.outputs["ApiUrl"])
        self.auth = authorisation(self.outputs)
        self.client = ApiClient(self.api, self.auth)
        self.signed = SignedBy(self.auth)  # for requests sent with requests
        self.bucket = str(self.outputs["BucketName"])
        self.incoming = str(self.outputs["IncomingPrefix"])
        # Every SageMaker name of this stack starts with it: {NamePrefix}-{stack id}.
        self.prefix = str(self.outputs["SageMakerNamePrefix"])
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=str(self.outputs["Region"]),
        )
        aws = str(self.outputs["AwsEndpointUrl"])
        self.s3 = session.client("s3", endpoint_url=aws)
        self.events = session.client("events", endpoint_url=aws)
        self.sqs = session.client("sqs", endpoint_url=aws)
        self.sns = session.client("sns", endpoint_url=aws)
        self.sagemaker = session.client(
            "sagemaker", endpoint_url=self.outputs["SageMakerEndpointUrl"]
        )

    @property
    def state_dir(self) -> Path:
        """The stack's ``--state-dir`` (outputs.json, sam-env.json, its log)."""
        return self.log_path.parent

    @property
    def outputs_path(self) -> Path:
        """The stack's outputs.json (what ``--join`` reads)."""
        return self.state_dir / "outputs.json"

    def log_lines(self, label: str) -> list[str]:
        """The stack's log lines of one function's runtimes (``[deploy]``, ``[deploy#1]`` ...)."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if line.startswith((f"[{label}]", f"[{label}#"))]

    @property
    def faults_dir(self) -> Path:
        """The stack's faults folder (``dropfit_local.faults``); needs ``--fault-injection``."""
        assert "FaultInjectionDir" in self.outputs, "start the stack with --fault-injection"
        return Path(self.outputs["FaultInjectionDir"])

    def upload(self, name: str, body: bytes, metadata: dict[str, str] | None = None) -> str:
        """Put ``incoming/<name>``; the new object version."""
        response = self.s3.put_object(
            Bucket=self.bucket, Key=f"{self.incoming}{name}", Body=body, Metadata=metadata or {}
        )
        return str(response["VersionId"])

    def describe(self, model: str) -> dict[str, Any] | None:
        response = self.client.get(f"/models/{model}", timeout=30)
        if response.status == 404:
            return None
        assert response.status == 200, response.text
        return dict(response.json())

    def latest_run(self, model: str) -> str | None:
        description = self.describe(model)
        return ((description or {}).get("latest_run") or {}).get("run")

    def wait_for_new_run(self, model: str, previous: str | None = None) -> dict[str, Any]:
        """Wait until a run other than ``previous`` is served (DEPLOYED), FAILED or REJECTED."""
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            description = self.describe(model)
            latest = (description or {}).get("latest_run") or {}
            if description and latest.get("run") not in (None, previous):
                served = (description.get("deployed_run") or {}).get("run") == latest["run"]
                if latest.get("status") in ("FAILED", "REJECTED") or (
                    served and description["status"] == "ready"
                ):
                    return description
            time.sleep(0.2)
        raise AssertionError(f"no new run of {model} settled in {RUN_SECONDS} s: {description}")

    def predict(self, model: str, instances: list[list[float]]) -> requests.Response:
        return requests.post(
            f"{self.api}/models/{model}/predict",
            json={"instances": instances},
            auth=self.signed,
            timeout=60,
        )

    def training_jobs(self, name_contains: str) -> list[dict[str, Any]]:
        return list_all(self.sagemaker.list_training_jobs, "TrainingJobSummaries", name_contains)

    def log_count(self, text: str) -> int:
        return self.log_path.read_text(errors="replace").count(text)

    def wait_until(self, what: str, check: Callable[[], Any], seconds: float = 30) -> Any:
        """Poll ``check`` until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + seconds
        while not (result := check()):
            assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
            time.sleep(0.1)
        return result

    def queue(self, prefix: str) -> tuple[str, str]:
        """A new SQS queue in the stack's moto: (url, arn)."""
        url = self.sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(url), str(attributes["Attributes"]["QueueArn"])

    @contextmanager
    def spy(self, pattern: dict[str, Any]) -> Iterator[Messages]:
        """A rule of the test's own on the default bus, with a queue of its own.

        Its target passes the whole event as the stack's delivery targets do, so each copy is
        byte for byte the body a function's queue receives.
        """
        url, arn = self.queue("e2e-spy")
        name = url.rsplit("/", 1)[-1]
        self.events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        transformer = {"InputTemplate": "<aws.events.event.json>"}
        self.events.put_targets(
            Rule=name, Targets=[{"Id": "spy", "Arn": arn, "InputTransformer": transformer}]
        )
        try:
            yield Messages(self, url)
        finally:
            self.events.remove_targets(Rule=name, Ids=["spy"])
            self.events.delete_rule(Name=name)
            self.sqs.delete_queue(QueueUrl=url)

    def redeliver(self, message: dict[str, Any], copies: int = 1) -> dict[str, Any]:
        """Put the event a spy received on the bus again, ``copies`` times at once, as
        EventBridge's at-least-once delivery may; PutEvents' answer."""
        event = json.loads(message["Body"])
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event["resources"],
        }
        return dict(self.events.put_events(Entries=[entry] * copies))

    def spy_on_uploads(self, key: str) -> AbstractContextManager[Messages]:
        """A copy of every "Object Created" event of ``key`` (see :meth:`spy`)."""
        return self.spy(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"object": {"key": [key]}},
            }
        )

    @contextmanager
    def failure_notices(self) -> Iterator[Messages]:
        """An SQS queue subscribed to the failure topic, as an operator would subscribe."""
        url, arn = self.queue("e2e-failures")
        topic = str(self.outputs["FailureTopicArn"])
        subscription = self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        try:
            yield Messages(self, url)
        finally:
            self.sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
            self.sqs.delete_queue(QueueUrl=url)


@dataclass
class Messages:
    """Everything that arrives on one queue, kept in order of arrival."""

    local: Local
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        while batch := self.local.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            self.received.extend(cast(list[dict[str, Any]], batch))
            self.local.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return self.received

    def wait_for(self, text: str, seconds: float = 30) -> list[dict[str, Any]]:
        """The messages whose body mentions ``text``, once there is at least one."""
        return list(
            self.local.wait_until(
                f"a message mentioning {text!r} on {self.url}",
                lambda: [m for m in self.drain() if text in m["Body"]],
                seconds,
            )
        )


def list_all(call: Any, key: str, name_contains: str) -> list[dict[str, Any]]:
    """Every item of a SageMaker List call, following NextToken."""
    items: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = call(NameContains=name_contains, MaxResults=100, **token)
        items.extend(page[key])
        if "NextToken" not in page:
            return items
        token = {"NextToken": page["NextToken"]}


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) == 0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in command:
                found.append(int(entry.name))
    return found


@contextmanager
def run_stack(state: Path, *options: str, show_log: bool = True) -> Iterator[Local]:
    """``python -m dropfit_local up`` on free ports with ``options``, its state in ``state``.

    On exit it stops the stack with SIGINT, prints the end of its log (``show_log``) and checks
    that nothing it started is left running or listening.
    """
    log_path = state / "stack.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dropfit_local",
                "up",
                *("--aws-port", "0", "--api-port", "0", "--sagemaker-port", "0"),
                *("--state-dir", str(state)),
                *options,
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    outputs_path = state / "outputs.json"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not outputs_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the local stack did not start:\n{_tail(log_path)}")
            time.sleep(0.1)
        time.sleep(0.2)  # outputs.json is written last; let the usage text follow it
        yield Local(json.loads(outputs_path.read_text()), log_path, process.pid)
    finally:
        outputs = json.loads(outputs_path.read_text()) if outputs_path.exists() else {}
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        if show_log:
            print(f"\n--- local stack log (last lines) ---\n{_tail(log_path)}")
    # Stopped cleanly: nothing it started is still running or listening.
    assert code == 0, _tail(log_path)
    # A stack that joined another (--join) leaves that one's moto and SageMaker running.
    own = (
        ("ApiUrl",)
        if "JoinedStack" in outputs
        else ("AwsEndpointUrl", "SageMakerEndpointUrl", "ApiUrl")
    )
    urls = [outputs[k] for k in own if k in outputs]
    assert not [url for url in urls if _listening(url)]
    assert _processes_mentioning(str(state)) == []
