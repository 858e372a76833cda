"""The format function under moto: an S3 "Object Created" event -> a run and a k-NN training job."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from dropfit.names import job_name, source_digest
from dropfit.records import RunStatus

from .support import (
    IRIS_CLASSES,
    IRIS_FEATURES,
    PREFIX,
    Function,
    Stack,
    function_env,
    object_created_event,
    spy_on,
)

KEY = "incoming/iris.csv"


def _upload_and_handle(
    stack: Stack,
    format_function: Function,
    body: bytes,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    version = stack.put_upload(KEY, body, metadata)
    result: dict[str, Any] = format_function(stack.upload_event(KEY, version))
    return result


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ContentType": "text/csv",
        "CompressionType": "None",
    }


def _rows(text: str) -> list[tuple[float, ...]]:
    return sorted(tuple(float(v) for v in row) for row in csv.reader(io.StringIO(text)))


def _iris_rows_label_first(iris_csv: bytes) -> list[tuple[float, ...]]:
    """The upload as the channels must hold it: class index first, then the four features."""
    reader = csv.DictReader(io.StringIO(iris_csv.decode()))
    return sorted(
        (float(IRIS_CLASSES.index(r["Species"])), *(float(r[f]) for f in IRIS_FEATURES))
        for r in reader
    )


def test_upload_starts_a_knn_training_job_with_the_expected_request(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    env = function_env("format")
    version = stack.put_upload(KEY, iris_csv)

    result = format_function(stack.upload_event(KEY, version))

    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    assert result == {"outcome": "started", "model": "iris", "run": job, "reason": None}
    assert stack.training_jobs() == [job]
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)
    assert described["AlgorithmSpecification"]["TrainingImage"] == env["KNN_IMAGE_URI"]
    assert described["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert described["RoleArn"] == stack.role_arn
    datasets = f"s3://{stack.bucket}/datasets/iris/{job}/"
    assert described["InputDataConfig"] == [
        _channel("train", f"{datasets}train/"),
        _channel("test", f"{datasets}test/"),
    ]
    assert described["HyperParameters"] == {
        "feature_dim": "4",
        "k": "1",
        "sample_size": "112",
        "predictor_type": "classifier",
    }
    assert described["OutputDataConfig"] == {"S3OutputPath": f"s3://{stack.bucket}/models/iris/"}
    assert described["ResourceConfig"] == {
        "InstanceType": env["TRAINING_INSTANCE_TYPE"],
        "InstanceCount": int(env["TRAINING_INSTANCE_COUNT"]),
        "VolumeSizeInGB": 5,
    }
    assert described["StoppingCondition"] == {
        "MaxRuntimeInSeconds": int(env["MAX_TRAINING_SECONDS"])
    }
    tags = stack.sagemaker.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert tags == [{"Key": "dropfit:model", "Value": "iris"}, {"Key": "dropfit:run", "Value": job}]


def test_upload_writes_label_first_channels_and_metadata_and_leaves_the_upload_untouched(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    upload_before = stack.bucket_versions()

    job = format_function(stack.upload_event(KEY, version))["run"]

    base = f"datasets/iris/{job}/"
    train = stack.read(f"{base}train/train.csv").decode()
    test = stack.read(f"{base}test/test.csv").decode()
    assert len(train.splitlines()) == 112
    assert len(test.splitlines()) == 38
    assert _rows(train + test) == _iris_rows_label_first(iris_csv)
    assert json.loads(stack.read(f"{base}metadata.json")) == {
        "label_column": "Species",
        "feature_names": IRIS_FEATURES,
        "predictor_type": "classifier",
        "classes": IRIS_CLASSES,
        "n_rows": 150,
        "n_train": 112,
        "n_test": 38,
        "test_fraction": 0.25,
        "random_state": 0,
        "k": 1,
        "sample_size": 112,
        "feature_dim": 4,
        "preprocessing": {
            "scale": {"method": "none", "chosen_by": "option"},
            "encode": {"method": "refuse"},
            "missing": {"method": "refuse", "rows_dropped": 0, "values_filled": 0},
            "columns": [],
        },
    }
    after = stack.bucket_versions()
    assert [v for v in after if v[0] == KEY] == upload_before
    assert sorted(v[0] for v in after) == sorted(
        [KEY, f"{base}metadata.json", f"{base}test/test.csv", f"{base}train/train.csv"]
    )
    original = stack.s3.get_object(Bucket=stack.bucket, Key=KEY, VersionId=version)
    assert original["Body"].read() == iris_csv


def test_upload_records_a_training_run_with_its_label_map(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)

    job = format_function(stack.upload_event(KEY, version))["run"]

    run = stack.run("iris", job)
    assert run.status is RunStatus.TRAINING
    assert run.reason is None
    assert run.predictor_type == "classifier"
    assert (run.dataset or {})["n_features"] == len(IRIS_FEATURES)
    assert (run.dataset or {})["n_classes"] == len(IRIS_CLASSES)
    assert run.source["key"] == KEY
    assert run.source["version_id"] == version
    model = stack.model("iris")
    assert (model.endpoint, model.latest_run, model.deployed_run) == (f"{PREFIX}-iris", job, None)
    assert stack.failure_notices() == []


def test_duplicate_upload_event_starts_one_job(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, version)
    sagemaker_calls = spy_on(format_function.module.ingestor.sagemaker.client)

    first = format_function(event)
    second = format_function(event)

    assert first["outcome"] == "started"
    assert second == {"outcome": "duplicate", "model": "iris", "run": first["run"], "reason": None}
    assert sagemaker_calls.calls == ["CreateTrainingJob"]
    assert stack.training_jobs() == [first["run"]]
    assert stack.run("iris", first["run"]).status is RunStatus.TRAINING


def test_an_upload_overwritten_before_it_is_formatted_is_superseded_and_never_trained(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    announced = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, announced)
    newer = stack.put_upload(KEY, iris_csv + b"\n")  # before the event arrives

    result = format_function(event)

    assert result["outcome"] == "superseded"
    run = stack.run("iris", result["run"])
    assert (run.status, run.source["version_id"]) == (RunStatus.SUPERSEDED, announced)
    assert run.reason == (
        "iris.csv was uploaded again before this upload could be formatted; the newer upload "
        "is trained instead, and nothing was spent on this one."
    )
    assert stack.training_jobs() == []
    assert format_function(stack.upload_event(KEY, newer))["outcome"] == "started"


def test_an_upload_deleted_before_it_is_formatted_fails_with_the_reason_and_is_not_trained(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, version)
    stack.s3.delete_object(Bucket=stack.bucket, Key=KEY)  # a delete marker; the version stays

    result = format_function(event)

    run = stack.run("iris", result["run"])
    assert (result["outcome"], run.status) == ("rejected", RunStatus.FAILED)
    assert run.reason == (
        "iris.csv was deleted before it could be formatted, so it was not trained. Upload it "
        "again to train it."
    )
    assert stack.training_jobs() == []
    assert [n["reason"] for n in stack.failure_notices()] == [run.reason]


def test_a_new_version_of_the_same_key_starts_its_own_run(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    first = _upload_and_handle(stack, format_function, iris_csv)

    second = _upload_and_handle(stack, format_function, iris_csv)

    assert second["outcome"] == "started"
    assert second["run"] != first["run"]
    assert stack.training_jobs() == sorted([first["run"], second["run"]])
    assert stack.model("iris").latest_run == second["run"]


def test_metadata_options_reach_the_training_request_and_the_run(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    metadata = {
        "label": "species",
        "k": "3",
        "test-fraction": "0.2",
        "sample-size": "100",
        "hp-index_metric": "COSINE",
    }

    result = _upload_and_handle(stack, format_function, iris_csv, metadata)

    job = result["run"]
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)
    assert described["HyperParameters"] == {
        "feature_dim": "4",
        "k": "3",
        "sample_size": "100",
        "predictor_type": "classifier",
        "index_metric": "COSINE",
    }
    run = stack.run("iris", job)
    assert run.options == {
        "label": "species",
        "k": "3",
        "test_fraction": "0.2",
        "sample_size": "100",
        "hyperparameters": {"index_metric": "COSINE"},
    }
    assert run.dataset is not None
    assert (run.dataset["label_column"], run.dataset["n_train"], run.dataset["n_test"]) == (
        "Species",
        120,
        30,
    )


def _iris_with(iris_csv: bytes, line: int, replace: tuple[str, str] | None = None) -> bytes:
    lines = iris_csv.decode().splitlines()
    old, new = replace or ("", "")
    lines[line] = lines[line].replace(old, new, 1) if old else lines[line] + ",7.0"
    return ("\n".join(lines) + "\n").encode()


def _iris_setosa_only(iris_csv: bytes) -> bytes:
    lines = iris_csv.decode().splitlines()
    return "\n".join([lines[0], *(line for line in lines if "setosa" in line)]).encode()


@dataclass(frozen=True)
class BadUpload:
    make_body: Callable[[bytes], bytes]  # from the iris CSV
    metadata: dict[str, str]
    reason: str


BAD_UPLOADS = {
    "empty": BadUpload(
        lambda iris: b"",
        {},
        "The file is empty; upload a CSV with a header row and data rows.",
    ),
    "ragged row": BadUpload(
        lambda iris: _iris_with(iris, 3),
        {},
        "Line 4 has 6 fields but the header has 5 (ragged rows); quote values that contain commas.",
    ),
    "non-numeric feature": BadUpload(
        lambda iris: _iris_with(iris, 5, ("5.0", "n/a")),
        {},
        "Columns Sepal.Length, Species are not numeric, but only the label may be: features "
        "must be numbers. If one of them is the label, name it with the metadata option "
        "label=<column>.",
    ),
    "non-numeric feature, label named": BadUpload(
        lambda iris: _iris_with(iris, 5, ("5.0", "n/a")),
        {"label": "Species"},
        "Feature column 'Sepal.Length' has a non-numeric value 'n/a' in data row 5; features "
        "must be finite numbers.",
    ),
    "one class": BadUpload(
        _iris_setosa_only,
        {},
        "Label column 'Species' has only one class ('setosa'); a classifier needs at least 2 "
        "classes.",
    ),
    "k=0": BadUpload(
        lambda iris: iris,
        {"k": "0"},
        "Option k=0 is out of range; expected 1..1024 or auto.",
    ),
    "unknown option": BadUpload(
        lambda iris: iris,
        {"lable": "Species"},
        "Unknown option 'lable'; known options are name, label, k, predictor_type, "
        "test_fraction, sample_size, scale, encode, missing, min_score, force and "
        "hp-<hyperparameter>.",
    ),
}


@pytest.mark.parametrize("upload", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_invalid_upload_fails_its_run_with_the_reason_and_starts_no_job(
    stack: Stack, format_function: Function, iris_csv: bytes, upload: BadUpload
) -> None:
    version = stack.put_upload(KEY, upload.make_body(iris_csv), upload.metadata)
    bucket_before = stack.bucket_versions()
    sagemaker_calls = spy_on(format_function.module.ingestor.sagemaker.client)

    result = format_function(stack.upload_event(KEY, version))

    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    reason = upload.reason
    assert result == {"outcome": "rejected", "model": "iris", "run": job, "reason": reason}
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.FAILED, reason)
    assert sagemaker_calls.calls == []
    assert stack.training_jobs() == []
    assert stack.failure_notices() == [
        {"model": "iris", "run": job, "stage": "validation", "reason": reason}
    ]
    assert stack.bucket_versions() == bucket_before


def test_object_deleted_before_it_is_read_fails_its_run(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    event = stack.upload_event(KEY, version)
    stack.s3.delete_object(Bucket=stack.bucket, Key=KEY, VersionId=version)

    result = format_function(event)

    reason = (
        "iris.csv was deleted before it could be formatted, so it was not trained. Upload it "
        "again to train it."
    )
    assert (result["outcome"], result["reason"]) == ("rejected", reason)
    run = stack.run("iris", result["run"])
    assert (run.status, run.reason) == (RunStatus.FAILED, reason)
    assert stack.training_jobs() == []
    assert stack.failure_notices() == [
        {"model": "iris", "run": result["run"], "stage": "validation", "reason": reason}
    ]
    assert stack.bucket_versions() == []


def test_an_object_the_function_may_not_decrypt_fails_its_run_as_access_denied(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    # moto has no KMS: S3 refuses the read as it does for a key the role may not use
    s3 = format_function.module.ingestor.storage.client
    s3.meta.events.register("before-call.s3.GetObject", _access_denied, unique_id="kms-denied")
    try:
        result = format_function(stack.upload_event(KEY, version))
    finally:
        s3.meta.events.unregister("before-call.s3.GetObject", unique_id="kms-denied")

    assert result["outcome"] == "rejected"
    assert result["reason"].startswith(
        f"{KEY} cannot be read: access denied (code AccessDenied) although it exists. It is "
        "most likely encrypted with a KMS key"
    )
    run = stack.run("iris", result["run"])
    assert (run.status, run.reason) == (RunStatus.FAILED, result["reason"])
    assert stack.training_jobs() == []
    assert [n["stage"] for n in stack.failure_notices()] == ["validation"]


def _access_denied(**_: Any) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    error = {"Code": "AccessDenied", "Message": "Access Denied"}
    response = AWSResponse("https://s3.local/", 403, HTTPHeaders(), None)
    return response, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}


@pytest.mark.parametrize(
    "location",
    [
        (None, "iris.csv"),
        (None, f"datasets/iris/{PREFIX}-iris-0123456789ab/train/train.csv"),
        ("someone-elses-bucket", KEY),
    ],
    ids=["bucket root", "datasets prefix", "another bucket"],
)
def test_object_outside_the_incoming_prefix_is_ignored(
    stack: Stack, format_function: Function, location: tuple[str | None, str]
) -> None:
    bucket, key = location[0] or stack.bucket, location[1]
    sagemaker_calls = spy_on(format_function.module.ingestor.sagemaker.client)
    storage_calls = spy_on(format_function.module.ingestor.storage.client)
    event = object_created_event(bucket, key, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", 4551, "c6a1b5b3")

    result = format_function(event)

    assert result == {
        "outcome": "ignored",
        "model": None,
        "run": None,
        "reason": f"s3://{bucket}/{key} is not ours",
    }
    assert sagemaker_calls.calls == storage_calls.calls == []
    assert stack.table_items() == []
    assert stack.failure_notices() == []


def test_key_without_a_model_name_is_rejected_and_notified(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    key = "incoming/---.csv"
    version = stack.put_upload(key, iris_csv)

    result = format_function(stack.upload_event(key, version))

    reason = (
        "Cannot derive a model name from the key 'incoming/---.csv': it needs at least one "
        "letter or digit before '.csv'."
    )
    assert result == {"outcome": "rejected", "model": None, "run": None, "reason": reason}
    assert stack.table_items() == []
    assert stack.training_jobs() == []
    assert stack.failure_notices() == [
        {"model": "-", "run": "-", "stage": "naming", "reason": reason}
    ]


def test_url_encoded_key_in_the_event_names_the_model_after_the_real_key(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    key = "incoming/Team A/Iris Flowers.csv"
    version = stack.put_upload(key, iris_csv)
    event = stack.upload_event(key, version)
    event["detail"]["object"]["key"] = "incoming/Team+A/Iris+Flowers.csv"  # as S3 sends it

    result = format_function(event)

    assert (result["outcome"], result["model"]) == ("started", "team-a-iris-flowers")
    assert stack.run("team-a-iris-flowers", result["run"]).source["key"] == key
    assert stack.model("team-a-iris-flowers").endpoint == f"{PREFIX}-team-a-iris-flowers"


def _wide_cjk_csv(features: int = 1000, name_length: int = 128) -> bytes:
    """The widest upload README allows: every column name as long as allowed, in a script that
    takes 4 bytes a character in UTF-8 (CJK Extension B)."""
    names = [f"{i:04d}" + "𠀀" * (name_length - 4) for i in range(features)]
    rows = [",".join(str(r + j % 7) for j in range(features)) + f",{'ab'[r % 2]}" for r in range(8)]
    return ("\n".join([",".join([*names, "label"]), *rows]) + "\n").encode()


def _item_bytes(item: dict[str, Any]) -> int:
    """An item's size roughly as DynamoDB counts it: names and values in UTF-8."""
    return len(json.dumps(item, ensure_ascii=False).encode())


def test_the_widest_upload_keeps_a_small_run_record_and_its_names_in_metadata_json(
    stack: Stack, format_function: Function
) -> None:
    body = _wide_cjk_csv()

    result = _upload_and_handle(stack, format_function, body)

    assert result["outcome"] == "started", result
    run = stack.run("iris", result["run"])
    assert run.status is RunStatus.TRAINING
    record = next(i for i in stack.table_items() if i["sk"]["S"] == run.job)
    assert _item_bytes(record) < 8 * 1024  # DynamoDB's limit is 400 KB; names are 512 KB
    metadata = json.loads(stack.read(f"datasets/iris/{run.job}/metadata.json"))
    assert metadata["feature_names"][999] == "0999" + "𠀀" * 124
    assert (run.dataset or {})["n_features"] == 1000


def test_a_failed_run_shows_the_options_it_applied(stack: Stack, format_function: Function) -> None:
    result = _upload_and_handle(
        stack, format_function, b"a,label\n1,x\n", {"k": "3", "hp-index_metric": "COSINE"}
    )

    run = stack.run("iris", result["run"])
    assert run.status is RunStatus.FAILED
    assert run.options == {
        "k": "3",
        "test_fraction": "0.25",
        "hyperparameters": {"index_metric": "COSINE"},
    }
