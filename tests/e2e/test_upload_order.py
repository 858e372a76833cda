"""Issue 9, item 2 on the local stack: a retried older upload never deploys over a newer one.

v1 and v2 of ``incoming/retry.csv`` are uploaded back to back; v1's first two attempts crash
(test-only fault injection), so its retry is formatted after v2. S3's order decides, not the
order in which the format function happened to run: v2 is the model's latest run and serves,
v1 ends SUPERSEDED and nothing is spent on it.
"""

from __future__ import annotations

import hashlib

import boto3
import pytest
from dropfit.names import job_name, source_digest

from dropfit_local import faults

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e


def _run_of(local: Local, version: str) -> str:
    key = f"{local.incoming}retry.csv"
    return job_name(local.prefix, "retry", source_digest(local.bucket, key, version))


def test_a_retried_older_upload_never_deploys_over_the_newer_one(local: Local) -> None:
    v1_body, v2_body = IRIS + b"\n\n\n", IRIS + b"\n"
    # The event names the object's ETag (its MD5 here): the faults hit v1's event only.
    faults.inject(
        local.faults_dir, "function:FormatFunction", 2, match=hashlib.md5(v1_body).hexdigest()
    )
    v1 = local.upload("retry.csv", v1_body)
    v2 = local.upload("retry.csv", v2_body)
    old, new = _run_of(local, v1), _run_of(local, v2)
    table = boto3.client(
        "dynamodb",
        endpoint_url=local.outputs["AwsEndpointUrl"],
        region_name=local.outputs["Region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def status(run: str) -> str | None:
        item = table.get_item(
            TableName=local.outputs["TableName"],
            Key={"pk": {"S": "RUN#retry"}, "sk": {"S": run}},
            ConsistentRead=True,
        ).get("Item")
        return item["status"]["S"] if item else None

    local.wait_until(
        "v1's event to fail twice",
        lambda: faults.fired(local.faults_dir, "function:FormatFunction") == 2,
    )
    local.wait_until(
        "v1's run to end", lambda: status(old) in ("SUPERSEDED", "FAILED", "DEPLOYED"), 120
    )
    description = local.wait_until(
        "v2 to serve",
        lambda: (d := local.describe("retry")) and d["status"] == "ready" and d,
        120,
    )

    assert status(old) == "SUPERSEDED"
    assert description["latest_run"]["run"] == new
    assert description["deployed_run"]["run"] == new
    assert local.predict("retry", [[5.1, 3.5, 1.4, 0.2]]).json()["run"] == new
    assert (
        local.s3.head_object(Bucket=local.bucket, Key=f"{local.incoming}retry.csv")["VersionId"]
        == v2
    )
