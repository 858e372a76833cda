"""Uploads above the threshold, end to end: a stack joined with ``ProcessingThresholdMB=0``
formats every upload on the local SageMaker's Processing jobs; the shared stack formats the same
files in its format function. The channels are the same bytes, split included, and the
Processing stack trains and serves from them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from .stack import IRIS, Local, run_stack

pytestmark = pytest.mark.e2e

PROCESSING_STACK = "dropfit-local-processing"
FLOWER = [[5.1, 3.5, 1.4, 0.2]]


@pytest.fixture(scope="module")
def processing(local: Local, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state: Path = tmp_path_factory.mktemp("processing-stack")
    options = (
        "--stack-name",
        PROCESSING_STACK,
        "--join",
        str(local.outputs_path),
        "--parameter",
        "ProcessingThresholdMB=0",
    )
    with run_stack(state, *options) as stack:
        yield stack


def mixed_csv(rows: int = 700, bad_row: int | None = None) -> bytes:
    """Three features of different scales and a three-class label; ``bad_row`` (a data row,
    from 1) holds a word where a number belongs."""
    rng = random.Random(12)
    lines = ["height,weight,age,kind"]
    for row in range(1, rows + 1):
        kind = rng.choice(["ash", "birch", "cedar"])
        base = {"ash": 1.0, "birch": 2.0, "cedar": 3.0}[kind]
        weight = "heavy" if row == bad_row else f"{base * 40 + rng.gauss(0, 9):.3f}"
        lines.append(f"{base + rng.gauss(0, 0.4):.4f},{weight},{rng.randint(1, 90)},{kind}")
    return ("\n".join(lines) + "\n").encode()


def run_objects(stack: Local, model: str, run: str) -> dict[str, bytes]:
    prefix = f"datasets/{model}/{run}/"
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) :]: stack.s3.get_object(Bucket=stack.bucket, Key=item["Key"])[
            "Body"
        ].read()
        for item in listed
    }


def runs(stack: Local, model: str) -> list[dict[str, object]]:
    response = stack.client.get(f"/models/{model}/runs", timeout=30)
    assert response.status == 200, response.text
    return list(response.json()["runs"])


@pytest.mark.parametrize(
    ("name", "body", "metadata"),
    [
        ("iris.csv", IRIS, {}),
        ("trees.csv", mixed_csv(), {"scale": "standard", "k": "auto"}),
    ],
    ids=["iris", "trees-scaled-k-auto"],
)
def test_an_upload_formatted_by_processing_gets_the_lambda_paths_channels_and_serves(
    local: Local, processing: Local, name: str, body: bytes, metadata: dict[str, str]
) -> None:
    model = f"proc-{name.removesuffix('.csv')}"
    key = f"{model}.csv"
    local.upload(key, body, metadata)
    processing.upload(key, body, metadata)
    in_place = local.wait_for_new_run(model)
    processed = processing.wait_for_new_run(model)
    assert in_place["status"] == processed["status"] == "ready", (in_place, processed)

    ours = str(in_place["deployed_run"]["run"])
    theirs = str(processed["deployed_run"]["run"])
    lambda_channels = run_objects(local, model, ours)
    processing_channels = run_objects(processing, model, theirs)
    assert sorted(processing_channels) == ["metadata.json", "test/test.csv", "train/train.csv"]
    assert processing_channels == lambda_channels  # byte for byte, the split included

    # The run shows it went through Processing; the shared stack's did not.
    (record,) = [r for r in runs(processing, model) if r["run"] == theirs]
    assert record["processing"] == {
        "job": theirs,
        "instance_type": "ml.m5.xlarge",
        "instance_count": 1,
    }
    assert "processing" not in next(r for r in runs(local, model) if r["run"] == ours)
    job = processing.sagemaker.describe_processing_job(ProcessingJobName=theirs)
    assert job["ProcessingJobStatus"] == "Completed"
    assert job["ProcessingJobName"].startswith(f"{processing.prefix}-")
    if name == "iris.csv":
        answer = processing.predict(model, FLOWER)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == [{"label": "setosa"}]


def test_an_upload_refused_deep_in_its_rows_fails_with_the_same_reason_and_leaves_nothing(
    local: Local, processing: Local
) -> None:
    body = mixed_csv(bad_row=600)
    local.upload("proc-broken.csv", body, {"label": "kind"})
    processing.upload("proc-broken.csv", body, {"label": "kind"})
    in_place = local.wait_for_new_run("proc-broken")
    processed = processing.wait_for_new_run("proc-broken")

    assert in_place["latest_run"]["status"] == processed["latest_run"]["status"] == "FAILED"
    assert "row 600" in processed["latest_run"]["reason"]
    assert processed["latest_run"]["reason"] == in_place["latest_run"]["reason"]
    run = str(processed["latest_run"]["run"])
    assert run_objects(processing, "proc-broken", run) == {}
    job = processing.sagemaker.describe_processing_job(ProcessingJobName=run)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["ExitMessage"] == processed["latest_run"]["reason"]


def test_a_large_upload_with_a_bad_header_fails_at_once_and_starts_no_processing_job(
    processing: Local,
) -> None:
    processing.upload("proc-header.csv", b"a,b,a\n1,2,x\n")
    failed = processing.wait_for_new_run("proc-header")

    assert failed["latest_run"]["status"] == "FAILED"
    assert failed["latest_run"]["reason"] == (
        "Column name 'a' appears more than once; names must be unique."
    )
    jobs = processing.sagemaker.list_processing_jobs(
        NameContains=f"{processing.prefix}-proc-header"
    )
    assert jobs["ProcessingJobSummaries"] == []
