"""The Processing path's pure parts: its request, the job's entry point, the code bundle."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import validate_parameters
from dropfit.dataset import format_dataset
from dropfit.names import job_name
from dropfit.options import Defaults, parse_options
from dropfit.processing import code_digest, package_files
from dropfit.processing_job import JobOptions, is_first_host, main
from dropfit.sagemaker_requests import (
    ProcessingJobSpec,
    processing_job_request,
    processing_volume_gb,
)
from dropfit.settings import FormatSettings

IRIS_CSV = (Path(__file__).resolve().parents[1] / "data" / "iris.csv").read_bytes()
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
RUN = job_name("dropfit-1c2fa620", "iris", "0123456789ab")
DEFAULTS = {"k": "1", "scale": "none", "encode": "refuse", "missing": "refuse", "min_score": "none"}


def spec(upload_bytes: int = 20 * 1024**3) -> ProcessingJobSpec:
    return ProcessingJobSpec(
        job_name=RUN,
        model="iris",
        image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-py312-cpu-py3",
        role_arn="arn:aws:iam::123456789012:role/dropfit-ProcessingJobRole",
        code_uri="s3://bucket/processing/code/0123456789abcdef/",
        job_uri=f"s3://bucket/processing/jobs/iris/{RUN}/",
        upload_uri="s3://bucket/incoming/iris.csv",
        run_uri=f"s3://bucket/datasets/iris/{RUN}",
        upload_bytes=upload_bytes,
        instance_type="ml.m5.xlarge",
        instance_count=1,
    )


def test_the_processing_request_is_one_the_api_model_accepts() -> None:
    request = processing_job_request(spec())

    shape = SAGEMAKER.operation_model("CreateProcessingJob").input_shape
    assert shape is not None
    validate_parameters(request, shape)
    outputs = {
        o["OutputName"]: o["S3Output"]["S3Uri"]
        for o in request["ProcessingOutputConfig"]["Outputs"]
    }
    assert outputs == {
        "train": f"s3://bucket/datasets/iris/{RUN}/train",
        "test": f"s3://bucket/datasets/iris/{RUN}/test",
        "metadata": f"s3://bucket/datasets/iris/{RUN}",
    }
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "-m",
        "dropfit.processing_job",
    ]
    assert all(len(a) <= 256 for a in request["AppSpecification"]["ContainerArguments"])
    assert request["Tags"] == [
        {"Key": "dropfit:model", "Value": "iris"},
        {"Key": "dropfit:run", "Value": RUN},
    ]


@pytest.mark.parametrize(
    ("upload_bytes", "volume_gb"), [(0, 30), (8 * 1024**3, 30), (100 * 1024**3, 260)]
)
def test_the_volume_holds_the_upload_and_its_channels(upload_bytes: int, volume_gb: int) -> None:
    assert processing_volume_gb(upload_bytes) == volume_gb


@pytest.mark.parametrize(("size", "processed"), [(None, False), (1048576, False), (1048577, True)])
def test_uploads_above_the_threshold_go_to_processing(size: int | None, processed: bool) -> None:
    env = {name: "x" for name in FormatSettings.env_names()}
    env |= {"TRAINING_INSTANCE_COUNT": "1", "MAX_TRAINING_SECONDS": "60", "ASYNC_ATTEMPTS": "3"}
    env |= {"PROCESSING_THRESHOLD_MB": "1", "PROCESSING_INSTANCE_COUNT": "1"}

    assert FormatSettings.from_env(env).goes_to_processing(size) is processed


def _job(tmp_path: Path, body: bytes, metadata: dict[str, str]) -> list[str]:
    (tmp_path / "upload").mkdir()
    (tmp_path / "upload" / "iris.csv").write_bytes(body)
    options = JobOptions("iris.csv", metadata, DEFAULTS, training_instance_count=1)
    (tmp_path / "options.json").write_bytes(options.to_json())
    return [
        "--upload",
        str(tmp_path / "upload"),
        "--job",
        str(tmp_path / "options.json"),
        "--output",
        str(tmp_path / "out"),
        "--message",
        str(tmp_path / "message"),
        "--resource-config",
        str(tmp_path / "resourceconfig.json"),
    ]


def test_the_job_writes_what_the_format_function_writes(tmp_path: Path) -> None:
    argv = _job(tmp_path, IRIS_CSV, {"test_fraction": "0.3"})

    assert main(argv) == 0

    expected = format_dataset(IRIS_CSV, parse_options({"test_fraction": "0.3"}, Defaults()), 1)
    out = tmp_path / "out"
    assert (out / "train" / "train.csv").read_bytes() == expected.train_csv
    assert (out / "test" / "test.csv").read_bytes() == expected.test_csv
    assert (out / "metadata" / "metadata.json").read_bytes() == expected.metadata.to_json()
    assert not (tmp_path / "message").exists()


def test_an_invalid_upload_exits_1_with_its_reason_as_the_exit_message(tmp_path: Path) -> None:
    argv = _job(tmp_path, IRIS_CSV, {"label": "colour"})

    assert main(argv) == 1

    assert (tmp_path / "message").read_text().startswith("Label column 'colour' was not found")
    assert not list((tmp_path / "out").rglob("*.csv"))


def test_only_the_first_of_several_instances_formats(tmp_path: Path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}))
    assert not is_first_host(config)
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-2", "algo-1"]}))
    assert is_first_host(config)
    assert is_first_host(tmp_path / "absent.json")


def test_the_code_digest_follows_every_file_of_the_package(tmp_path: Path) -> None:
    package = tmp_path / "dropfit"
    package.mkdir()
    (package / "__init__.py").write_bytes(b"")
    (package / "a.py").write_bytes(b"x = 1\n")
    files = list(package_files(package))
    assert [name for name, _ in files] == ["dropfit/__init__.py", "dropfit/a.py"]
    before = code_digest(files)
    (package / "a.py").write_bytes(b"x = 2\n")
    assert code_digest(list(package_files(package))) != before
