"""Every AWS call of the Processing path fails in turn (as tests/handlers/
test_every_failure_ends_the_run.py does for the in-place path): the run still ends in a terminal
state with an actionable reason and a notice, or is retried to success, and a run that did not
train leaves nothing under datasets/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dropfit.names import job_name, source_digest
from dropfit.records import RunStatus

from .support import PREFIX, Function, Stack
from .test_every_failure_ends_the_run import (
    KINDS,
    CallFaults,
    assert_settled,
    clients_of,
    run_as_lambda,
)
from .test_processing_handler import (
    KEY,
    keys,
    processing_event,
    processing_format,  # noqa: F401 (a fixture)
    run_the_job_as_sagemaker_would,
)

COMPLETION_CALLS = 8  # what a Completed event makes (asserted below, so the matrix stays whole)
FUNCTION_CLIENTS = (
    "ingestor.storage.client",
    "ingestor.table.client",
    "ingestor.sagemaker.client",
    "ingestor.notifier.client",
)


def processed(stack: Stack, function: Function, iris_csv: bytes, tmp_path: Path) -> str:
    """An upload whose Processing job has just written its channels; its run."""
    version = stack.put_upload(KEY, iris_csv)
    assert function(stack.upload_event(KEY, version))["outcome"] == "processing"
    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    run_the_job_as_sagemaker_would(stack, job, tmp_path)
    return job


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nth", range(1, COMPLETION_CALLS + 1))
def test_each_call_after_a_completed_processing_job_failing_ends_the_run_or_is_retried(
    stack: Stack,
    processing_format: Function,  # noqa: F811
    *,
    iris_csv: bytes,
    tmp_path: Path,
    nth: int,
    kind: str,
) -> None:
    code, status, failing = KINDS[kind]
    job = processed(stack, processing_format, iris_csv, tmp_path)
    stack.failure_notices()
    faults = CallFaults(
        clients_of(processing_format, *FUNCTION_CLIENTS), nth, code, status, failing
    )

    answer, _ = run_as_lambda(lambda: processing_format(processing_event(job, "Completed")), faults)
    faults.remove()

    run = stack.runs.get_run("iris", job)
    assert run is not None
    assert run.status is not RunStatus.PROCESSING or answer is None, (run, faults.failed)
    assert_settled(stack, job, run.status is RunStatus.TRAINING, answer, faults.failed)
    if run.status is RunStatus.FAILED:
        assert keys(stack, "datasets/") == []
    if failing == 1:
        assert answer is not None and answer["outcome"] == "started", (faults.failed, answer)


def test_the_completion_matrix_covers_every_call(
    stack: Stack,
    processing_format: Function,  # noqa: F811
    iris_csv: bytes,
    tmp_path: Path,
) -> None:
    job = processed(stack, processing_format, iris_csv, tmp_path)
    faults = CallFaults(clients_of(processing_format, *FUNCTION_CLIENTS))
    faults.new_attempt()

    assert processing_format(processing_event(job, "Completed"))["outcome"] == "started"
    assert len(faults.calls) == COMPLETION_CALLS, faults.calls


@pytest.mark.parametrize("kind", ["throttled", "validation"])
def test_create_processing_job_refused_ends_the_run_and_leaves_nothing(
    stack: Stack,
    processing_format: Function,  # noqa: F811
    iris_csv: bytes,
    kind: str,
) -> None:
    code, status, _ = KINDS[kind]
    version = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, version)
    faults = CallFaults(clients_of(processing_format, *FUNCTION_CLIENTS), None, code, status)
    client = processing_format.module.ingestor.sagemaker.client

    def refuse(**_: Any) -> None:
        from botocore.exceptions import ClientError

        error = {"Code": code, "Message": f"{code} (injected)"}
        raise ClientError(
            {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}},
            "CreateProcessingJob",
        )

    client.meta.events.register("before-call.sagemaker.CreateProcessingJob", refuse)
    try:
        answer, _ = run_as_lambda(lambda: processing_format(event), faults)
    finally:
        client.meta.events.unregister("before-call.sagemaker.CreateProcessingJob", refuse)
        faults.remove()

    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    run = stack.runs.get_run("iris", job)
    assert run is not None and run.status is RunStatus.FAILED, run
    assert run.reason is not None and "CreateProcessingJob" in run.reason
    assert answer is not None and answer["outcome"] == "failed"
    assert keys(stack, "datasets/") == []
