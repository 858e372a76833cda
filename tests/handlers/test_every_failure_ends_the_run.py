"""Issue 9, item 4: every AWS call of the format and deploy functions fails in turn, and every
run still ends in a terminal state with an actionable reason and a notice (or is retried to
success), with nothing left under datasets/ by a run that did not train.

Each case runs an event as Lambda's asynchronous invocation does (``ASYNC_ATTEMPTS`` attempts
while the handler raises) against moto, with the N-th AWS call of every attempt answered by an
error (a botocore ``before-call`` hook on the function's own clients: the call is never sent,
as when AWS refuses it). Error kinds: throttled, a 5xx, a validation error, a quota
(``ResourceLimitExceeded``), and a throttle on the first attempt only (retried to success).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from dropfit.records import TERMINAL, RunStatus

from .support import ENDPOINT, Function, Stack, function_env, training_event

KEY = "incoming/iris.csv"
ATTEMPTS = int(function_env("format")["ASYNC_ATTEMPTS"])
KINDS = {  # kind -> (code, HTTP status, attempts it fails: None = every one)
    "throttled": ("ThrottlingException", 400, None),
    "5xx": ("InternalFailure", 500, None),
    "validation": ("ValidationException", 400, None),
    "limit": ("ResourceLimitExceeded", 400, None),
    "throttled-once": ("ThrottlingException", 400, 1),
}
FORMAT_CALLS = 13  # what one upload of iris makes (asserted below, so the matrix stays whole)
DEPLOY_CALLS = 12  # what a completed training event makes on a fresh model


@dataclass
class CallFaults:
    """Counts a function's AWS calls per attempt and answers the ``nth`` with an error."""

    clients: list[Any]
    nth: int | None = None
    code: str = ""
    status: int = 400
    failing_attempts: int | None = None
    attempt: int = 0
    calls: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for client in self.clients:
            client.meta.events.register("before-call.*.*", self._call, unique_id="call-faults")

    def new_attempt(self) -> None:
        self.attempt += 1
        self.calls = []

    def _call(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.calls.append(model.name)
        failing = self.failing_attempts is None or self.attempt <= self.failing_attempts
        if len(self.calls) != self.nth or not failing:
            return None
        self.failed.append(model.name)
        error = {"Code": self.code, "Message": f"{self.code} (injected)"}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": self.status}}
        return AWSResponse("https://aws.local/", self.status, HTTPHeaders(), None), parsed

    def remove(self) -> None:
        for client in self.clients:
            client.meta.events.unregister("before-call.*.*", unique_id="call-faults")


def clients_of(function: Function, *paths: str) -> list[Any]:
    found = []
    for path in paths:
        target: Any = function.module
        for name in path.split("."):
            target = getattr(target, name)
        found.append(target)
    return found


def run_as_lambda(call: Callable[[], Any], faults: CallFaults) -> tuple[Any, int]:
    """The handler's answer (None if every attempt raised: the DLQ) and the attempts made."""
    for attempt in range(1, ATTEMPTS + 1):
        faults.new_attempt()
        try:
            return call(), attempt
        except Exception:
            continue
    return None, ATTEMPTS


def datasets_of(stack: Stack, job: str) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"datasets/iris/{job}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def assert_settled(stack: Stack, job: str, trained: bool, answer: Any, failed: list[str]) -> None:
    """Terminal with an actionable reason and a notice, or on its way (retried to success)."""
    run = stack.runs.get_run("iris", job)
    if run is None:
        # Failed before the upload was claimed: nothing recorded, nothing written, the event
        # is in the dead-letter queue intact, to re-drive.
        assert answer is None
        assert datasets_of(stack, job) == []
        return
    notices = stack.failure_notices()
    if run.status is RunStatus.FAILED:
        assert run.reason, run
        operation = failed[0]
        assert operation in run.reason or "(not recorded on the run)" in str(notices), run.reason
        assert any(n["run"] == job for n in notices), notices
        assert "upload" in run.reason or "operator" in run.reason
        if not trained:
            assert datasets_of(stack, job) == [], "a failed run left its channels"
        return
    if answer is None:
        # Every attempt raised: only a table write that failed on each can leave a run open;
        # the failure topic was told what could not be recorded.
        assert any("(not recorded on the run)" in n["reason"] for n in notices), (run, failed)
        return
    assert run.status in TERMINAL | {RunStatus.TRAINING, RunStatus.DEPLOYING}, run
    assert run.status is not RunStatus.FORMATTING


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nth", range(1, FORMAT_CALLS + 1))
def test_each_format_call_failing_ends_the_run_or_is_retried_to_success(
    stack: Stack, format_function: Function, iris_csv: bytes, nth: int, kind: str
) -> None:
    code, status, failing = KINDS[kind]
    version = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, version)
    faults = CallFaults(
        clients_of(
            format_function,
            "ingestor.storage.client",
            "ingestor.table.client",
            "ingestor.sagemaker.client",
            "ingestor.notifier.client",
        ),
        nth,
        code,
        status,
        failing,
    )

    answer, _ = run_as_lambda(lambda: format_function(event), faults)
    faults.remove()

    runs = stack.table_items()
    jobs = [i["sk"]["S"] for i in runs if i["pk"]["S"] == "RUN#iris"]
    assert len(jobs) <= 1
    if jobs:
        assert_settled(stack, jobs[0], False, answer, faults.failed)
    else:
        assert answer is None or answer["outcome"] == "rejected"
    if failing == 1:
        assert answer is not None and answer["outcome"] == "started", (faults.failed, answer)


def test_the_format_matrix_covers_every_call_of_an_upload(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    faults = CallFaults(
        clients_of(
            format_function,
            "ingestor.storage.client",
            "ingestor.table.client",
            "ingestor.sagemaker.client",
            "ingestor.notifier.client",
        )
    )
    version = stack.put_upload(KEY, iris_csv)
    faults.new_attempt()

    assert format_function(stack.upload_event(KEY, version))["outcome"] == "started"
    assert len(faults.calls) == FORMAT_CALLS, faults.calls


@pytest.fixture
def trained(stack: Stack, format_function: Function, iris_csv: bytes) -> tuple[str, Any]:
    version = stack.put_upload(KEY, iris_csv)
    job: str = format_function(stack.upload_event(KEY, version))["run"]
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)
    return job, training_event(job, artifact=described["ModelArtifacts"]["S3ModelArtifacts"])


def _deploy_clients(deploy_function: Function) -> list[Any]:
    return clients_of(
        deploy_function,
        "deployer.table.client",
        "deployer.sagemaker.client",
        "deployer.notifier.client",
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nth", range(1, DEPLOY_CALLS + 1))
def test_each_deploy_call_failing_ends_the_run_or_is_retried_to_success(
    stack: Stack, deploy_function: Function, trained: tuple[str, Any], nth: int, kind: str
) -> None:
    code, status, failing = KINDS[kind]
    job, event = trained
    faults = CallFaults(_deploy_clients(deploy_function), nth, code, status, failing)

    answer, _ = run_as_lambda(lambda: deploy_function(event), faults)
    faults.remove()

    assert_settled(stack, job, True, answer, faults.failed)
    if failing == 1:
        # Retried to success: the endpoint was asked to serve the run (it says so once it is
        # in service, and its state-change event marks the run DEPLOYED).
        assert answer is not None, faults.failed
        endpoint = stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert endpoint["EndpointConfigName"] == job


def test_the_deploy_matrix_covers_every_call_of_a_first_deployment(
    stack: Stack, deploy_function: Function, trained: tuple[str, Any]
) -> None:
    _, event = trained
    faults = CallFaults(_deploy_clients(deploy_function))
    faults.new_attempt()

    assert deploy_function(event) == {"outcome": "create"}
    assert len(faults.calls) == DEPLOY_CALLS, faults.calls
