"""The benchmark suite's own pieces (the suite itself runs in CI as ``make bench-quick``)."""

from __future__ import annotations

import json

import pytest

from bench import coldstart, pipeline
from bench.core import REGISTRY, Result, Target, run_child, table
from bench.run import main  # registers every benchmark


def test_every_benchmark_of_the_issue_is_registered() -> None:
    assert main is not None
    assert {"formatter", "coldstart", "predict", "package", "knn", "pipeline"} <= set(REGISTRY)
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


def test_the_demos_log_gives_the_pipeline_latency_and_its_stages() -> None:
    lines = [
        "  0.40 s  formatting",
        "  0.80 s  formatted, training",
        "  1.60 s  endpoint in service",
        "upload -> first prediction 2.00 s",
    ]

    total, shares = pipeline.stage_shares(lines)

    assert total == 2.0
    assert shares == {
        "upload": 0.2,
        "formatting": 0.2,
        "formatted, training": 0.4,
        "endpoint in service": 0.2,
    }


@pytest.mark.parametrize("function", ["predict", "deploy"])
def test_predict_and_deploy_import_no_pandas_numpy_or_pyarrow(function: str) -> None:
    imported = run_child(
        ["-m", "bench.coldstart_child", "handler", function], coldstart.lambda_env(function)
    )

    assert imported["heavy"] == [], json.dumps(imported)
