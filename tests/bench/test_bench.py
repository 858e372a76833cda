"""The benchmark suite's own pieces (the suite itself runs in CI as ``make bench-quick``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bench import coldstart, formatter, pipeline
from bench.core import REGISTRY, Result, Target, run_child, table
from bench.run import main  # registers every benchmark


def test_every_benchmark_of_the_issue_is_registered() -> None:
    assert main is not None
    assert {
        "formatter",
        "formatter_rivals",
        "coldstart",
        "predict",
        "package",
        "knn",
        "pipeline",
        "cli",
        "s3_read",
        "formatter_transformed",
    } <= set(REGISTRY)
    assert not REGISTRY["package"].quick and not REGISTRY["pipeline"].quick


def test_a_result_is_judged_on_its_ratio_or_value_and_serialised_as_documented() -> None:
    faster = Result("x.throughput", 80.0, "MB/s", baseline=10.0, target=Target("ratio", ">=", 8))
    leaner = Result("x.memory", 300.0, "MiB", target=Target("value", "<=", 256))

    assert (faster.ratio, faster.passed, leaner.passed) == (8.0, True, False)
    assert faster.to_json() == {
        "name": "x.throughput",
        "value": 80.0,
        "unit": "MB/s",
        "baseline": 10.0,
        "ratio": 8.0,
        "target": "ratio >= 8",
        "pass": True,
    }
    assert "FAIL" in table([faster, leaner])


def test_the_lambda_estimate_reads_each_pass_with_the_window_of_ranged_gets() -> None:
    # 2 s locally for 1 GB: 1.7 s of CPU per pass on 1,024 MB, less than any pass's S3 read
    run = {"seconds": 2.0, "cpu_seconds": 2.0, "cpus": 1, "rows": 10_000_000, "peak_mib": 150.0}
    fit = formatter._lambda_fit(run, 1000.0)

    assert fit.value == pytest.approx(2 * 1000 / (4 * 90))  # 4 GETs at ~90 MB/s each
    assert fit.detail["single_stream_seconds"] == pytest.approx(2 * 1000 / 90, abs=0.1)
    assert fit.detail["network_600Mbps_seconds"] == pytest.approx(2 * 1000 / 75, abs=0.1)
    assert fit.detail["peak_mib_with_s3_reader"] == 190.0  # the reader's 5 parts of 8 MiB


def test_the_pipeline_stages_come_from_the_runs_own_timestamps() -> None:
    at = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
    uploaded = at.timestamp()
    said = [
        (uploaded - 0.1, "Model iris: no run yet"),
        (uploaded, "\nUploading data/iris.csv to s3://bucket/incoming/iris.csv"),
        (uploaded + 0.9, "  0.90 s  endpoint in service"),
        (uploaded + 1.2, "upload -> first prediction 2.00 s"),
    ]
    job = {
        "CreationTime": at + dt.timedelta(seconds=0.25),
        "TrainingEndTime": at + dt.timedelta(seconds=0.75),
    }
    endpoint = {"LastModifiedTime": at + dt.timedelta(seconds=1.5)}

    total, stages = pipeline.stage_seconds(said, job, endpoint)

    assert total == 2.0
    assert stages == {
        "format (S3 event, format function)": 0.25,
        "training": 0.5,
        "deploy (event, deploy function, endpoint)": 0.75,
        "first prediction (seen in service, predict)": 0.5,
    }


@pytest.mark.parametrize("function", ["predict", "deploy"])
def test_predict_and_deploy_import_no_pandas_numpy_or_pyarrow(function: str) -> None:
    imported = run_child(
        ["-m", "bench.coldstart_child", "handler", function], coldstart.lambda_env(function)
    )

    assert imported["heavy"] == [], json.dumps(imported)


def test_the_transformed_check_reads_the_channels_with_the_local_engine(tmp_path) -> None:
    from bench import synthetic, transformed

    csv = synthetic.write_csv(tmp_path / "small.csv", 20_000)
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    transformed.child("standard", csv, out)
    assert transformed.local_engine_reads(csv, out)

    test = out / "test.csv"
    lines = test.read_bytes().splitlines(keepends=True)
    label, _, rest = lines[0].partition(b",")
    value, _, others = rest.partition(b",")
    lines[0] = b",".join([label, repr(float(value) * 1.001).encode(), others])
    test.write_bytes(b"".join(lines))
    assert not transformed.local_engine_reads(csv, out)


def test_each_memory_setting_gets_the_threads_the_function_counts_and_their_vcpus() -> None:
    one, two = formatter._memory_setting(2048, 8.0), formatter._memory_setting(3538, 8.0)

    assert (one["vcpus"], one["threads"], one["seconds_per_gb"]) == (1.16, 1, 8.0)
    # two threads on two vCPUs: 4 s of work per pass, slower than nothing but the S3 read
    assert two["threads"] in (1, 2) and two["seconds_per_gb"] <= one["seconds_per_gb"]
