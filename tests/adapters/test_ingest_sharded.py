"""An upload formatted for several training instances: one training object per instance, at
least, read ShardedByS3Key; the same rows as the one-object channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dropfit.aws.s3 import Storage
from dropfit.dataset import format_dataset
from dropfit.failures import RunEnder
from dropfit.ingest import Ingestor, UploadedObject
from dropfit.options import UploadOptions
from dropfit.records import Run
from dropfit.settings import FormatSettings

from .conftest import BUCKET, versioned


@dataclass
class Table:
    updates: list[dict[str, Any]] = field(default_factory=list)

    def claim_run(self, run: Run) -> bool:
        return True

    def claim_model(self, model: str, endpoint: str, source_key: str) -> str | None:
        return None  # the key owns its model name

    def record_upload(
        self, model: str, endpoint: str, job: str, order: str | None, *, created_at: str
    ) -> bool:
        return True

    def update_run(self, model: str, job: str, **changes: Any) -> bool:
        self.updates.append(changes)
        return True


@dataclass
class SageMaker:
    requests: list[dict[str, Any]] = field(default_factory=list)

    def start_training_job(self, request: dict[str, Any]) -> bool:
        self.requests.append(request)
        return True


class Notifier:
    def run_failed(self, *args: str) -> None:
        raise AssertionError(f"unexpected failure notice {args}")


def settings(instances: int) -> FormatSettings:
    return FormatSettings(
        table_name="runs",
        bucket_name=BUCKET,
        name_prefix="dropfit",
        incoming_prefix="incoming/",
        datasets_prefix="datasets/",
        artifacts_prefix="models/",
        knn_image_uri="382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1",
        sagemaker_role_arn="arn:aws:iam::123456789012:role/dropfit-sagemaker",
        training_instance_type="ml.m5.large",
        training_instance_count=instances,
        max_training_seconds=3600,
        default_k="1",
        default_scale="none",
        default_encode="refuse",
        default_missing="refuse",
        default_min_score="none",
        failure_topic_arn="arn:aws:sns:us-east-1:123456789012:dropfit-failures",
        async_attempts=3,
        processing_threshold_mb=10240,
        processing_image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        processing_role_arn="arn:aws:iam::123456789012:role/dropfit-processing",
        processing_instance_type="ml.m5.xlarge",
        processing_instance_count=1,
        processing_prefix="processing/",
    )


def test_two_training_instances_get_a_training_object_each_read_sharded_by_key(
    s3: Any, iris_csv: bytes
) -> None:
    versioned(s3)
    version = s3.put_object(Bucket=BUCKET, Key="incoming/iris.csv", Body=iris_csv)["VersionId"]
    table, sagemaker = Table(), SageMaker()
    ends = RunEnder(table, Notifier(), 3)  # type: ignore[arg-type]
    # Below the Processing threshold: no code is published.
    ingestor = Ingestor(settings(2), Storage(s3), table, sagemaker, Notifier(), ends, None)  # type: ignore[arg-type]

    result = ingestor.process(
        UploadedObject(BUCKET, "incoming/iris.csv", version, None, None, len(iris_csv))
    )

    assert result.outcome == "started"
    base = f"datasets/iris/{result.run}/"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=base)["Contents"]
    assert sorted(o["Key"][len(base) :] for o in listed) == [
        "metadata.json",
        "test/test.csv",
        "train/part-00000.csv",
        "train/part-00001.csv",
    ]
    parts = [
        s3.get_object(Bucket=BUCKET, Key=f"{base}train/part-0000{i}.csv")["Body"].read()
        for i in (0, 1)
    ]
    assert [p.count(b"\n") for p in parts] == [56, 56]
    assert b"".join(parts) == format_dataset(iris_csv, UploadOptions(), 1).train_csv
    (request,) = sagemaker.requests
    train = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert (train["S3Uri"], train["S3DataDistributionType"]) == (
        f"s3://{BUCKET}/{base}train/",
        "ShardedByS3Key",
    )
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["HyperParameters"]["sample_size"] == "112"  # the total: each samples half
    assert table.updates[0]["dataset"]["train_objects"] == 2
