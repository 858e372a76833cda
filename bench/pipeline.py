"""Local pipeline latency: upload iris -> first successful prediction, through the local stack.

The demo (dropfit_local.demo) run twice on one fresh stack, on free ports, as a newcomer's
`make demo` starts one: the first upload is measured cold (the stack's runtimes ran their INIT
when it started, as provisioned concurrency does; nothing had been invoked), the second warm
(every runtime has served). The cold run's baseline is the first run on a stack whose runtimes
start on demand (``--on-demand``: each function's first invocation imports its handler). Each
run's stages come from the timestamps the stack itself records for that run: the training job's
CreationTime (the format function is done) and TrainingEndTime, and the endpoint's
LastModifiedTime (in service with the new run), between the demo's upload and its first answered
prediction.
Full mode only: it starts servers (the e2e tests keep the stack itself from rotting).
"""

from __future__ import annotations

import functools
import itertools
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core import Context, Result, Target, benchmark

# The local SageMaker holds an endpoint in Creating/Updating this long (as AWS does for minutes),
# so that the states are observable: part of the deploy stage by design, not work.
ENDPOINT_DELAY_S = 0.3
_UPLOAD = re.compile(r"^\s*Uploading ")
_TOTAL = re.compile(r"upload -> first prediction ([\d.]+) s")


def stage_seconds(
    said: list[tuple[float, str]], job: dict[str, Any], endpoint: dict[str, Any]
) -> tuple[float, dict[str, float]]:
    """(upload -> first prediction, seconds of each stage) from the demo's time-stamped lines
    and the run's training job and endpoint, as DescribeTrainingJob and DescribeEndpoint say."""
    uploaded = next(at for at, line in said if _UPLOAD.match(line))
    total = next(float(m.group(1)) for _, line in said if (m := _TOTAL.search(line)))
    marks = [
        ("format (S3 event, format function)", uploaded),
        ("training", job["CreationTime"].timestamp()),
        ("deploy (event, deploy function, endpoint)", job["TrainingEndTime"].timestamp()),
        ("first prediction (seen in service, predict)", endpoint["LastModifiedTime"].timestamp()),
        ("", uploaded + total),
    ]
    return total, {
        name: round(end - start, 3) for (name, start), (_, end) in itertools.pairwise(marks)
    }


@benchmark("pipeline", quick=False)
def pipeline(ctx: Context) -> Iterator[Result]:
    """Local stack: upload iris -> first successful prediction, cold (first run) and warm."""
    from dropfit_local.demo import run_demo
    from dropfit_local.lambda_runtime import free_port
    from dropfit_local.stack import LocalStack

    measured: dict[str, tuple[float, dict[str, float]]] = {}
    # The baseline of the cold run: the same on a stack whose runtimes start on demand.
    for provisioned, runs in ((False, ("on-demand",)), (True, ("cold", "warm"))):
        with tempfile.TemporaryDirectory(prefix="dropfit-bench-stack-") as state:
            stack = LocalStack(
                state_dir=Path(state),
                log=lambda _: None,
                aws_port=free_port(),
                api_port=free_port(),
                sagemaker_port=free_port(),
                endpoint_delay_seconds=ENDPOINT_DELAY_S,
                provisioned=provisioned,
            )
            with stack:
                for run in runs:
                    said: list[tuple[float, str]] = []
                    run_demo(stack, say=functools.partial(_timestamped, said))
                    measured[run] = stage_seconds(said, *_served_run(stack))
    on_demand, _ = measured.pop("on-demand")
    for run, (total, stages) in measured.items():
        yield Result(
            f"pipeline.upload_to_first_prediction_{run}",
            total,
            "s",
            baseline=on_demand if run == "cold" else None,
            target=Target("value", "<=", 3),
            detail={
                "stage_seconds": stages,
                "stage_shares": {name: round(s / total, 3) for name, s in stages.items()},
                "deploy_includes_simulated_endpoint_delay_s": ENDPOINT_DELAY_S,
            },
        )


def _timestamped(said: list[tuple[float, str]], line: str) -> None:
    said.append((time.time(), line))


def _served_run(stack: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training job and endpoint of the run the model serves, from the local SageMaker."""
    described = stack.api_client().get("/models/iris", timeout=30).json()
    sagemaker = stack.client("sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName=described["deployed_run"]["run"])
    endpoint = sagemaker.describe_endpoint(EndpointName=described["endpoint"]["name"])
    assert endpoint["EndpointConfigName"] == job["TrainingJobName"]  # in service with this run
    return job, endpoint
