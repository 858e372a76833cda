"""The bad-input corpus through the format function, in process: S3 upload → event → run.

The unit test (tests/unit/test_corpus.py) proves each reason; this one proves what surrounds it
in the pipeline: the run ends FAILED with exactly that reason, the failure topic is told, no
training job is started, and nothing in the bucket is written, modified or deleted. The same
manifest also runs through the local stack (tests/e2e/test_corpus_e2e.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dropfit.aws.table import RunsTable
from dropfit.records import RunStatus

from tests.corpus import Case, load_cases, params
from tests.security.world import NAMES, Call, World, object_created, world

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
WRITES = {"PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "PutObjectTagging"}


@pytest.fixture(scope="module")
def pipeline() -> Iterator[World]:
    with pytest.MonkeyPatch.context() as monkeypatch, world(monkeypatch) as w:
        yield w


def _run(w: World, case: Case) -> tuple[dict[str, Any], list[Call]]:
    """Upload the case as `aws s3 cp --metadata` would and deliver its event; the calls made."""
    data = case.data()
    version = w.upload(case.key, data, case.metadata)
    if case.pipeline_only:  # deleted-before-read: every version goes before the event is handled
        w.s3.delete_object(Bucket=NAMES.bucket, Key=case.key, VersionId=version)
    before = len(w.recorder.calls)
    result = w.function("format")(object_created(case.key, version, len(data)))
    return result, w.recorder.calls[before:]


@pytest.mark.parametrize("case", params(c for c in load_cases() if c.rejected))
def test_rejected_upload_fails_its_run_with_the_reason_and_touches_nothing(
    pipeline: World, case: Case
) -> None:
    bucket_before = pipeline.bucket_state()

    result, calls = _run(pipeline, case)

    assert result["outcome"] == "rejected", result
    assert case.reason_matches(result["reason"], NAMES.bucket), result["reason"]
    operations = [c.operation for c in calls]
    assert "CreateTrainingJob" not in operations
    assert not WRITES & set(operations), operations
    (notice,) = [json.loads(c.params["Message"]) for c in calls if c.operation == "Publish"]
    assert notice["reason"] == result["reason"]
    # the upload itself is the only change to the bucket since before it
    new = set(pipeline.bucket_state()) - set(bucket_before)
    assert {key for key, _, _ in new} <= {case.key}
    if case.stage != "naming":
        run = RunsTable(NAMES.table, pipeline.dynamodb).get_run(case.model, result["run"])
        assert run is not None
        assert (run.status, run.reason) == (RunStatus.FAILED, result["reason"])


@pytest.mark.parametrize("case", params(c for c in load_cases() if not c.rejected))
def test_valid_upload_starts_its_training_job(pipeline: World, case: Case) -> None:
    result, calls = _run(pipeline, case)

    assert result["outcome"] == "started", result
    assert result["model"] == case.model
    (job,) = [c.params for c in calls if c.operation == "CreateTrainingJob"]
    assert job["TrainingJobName"] == result["run"]
