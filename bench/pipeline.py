"""Local pipeline latency: upload iris -> first successful prediction, through the local stack.

The demo (dropfit_local.demo) run twice on one stack, on free ports: the first upload warms the
function runtimes, the second is measured. The stages are the demo's own observations of
``GET /models/iris`` (formatting, training, trained, endpoint in service), then the prediction.
Full mode only: it starts servers (the e2e tests keep the stack itself from rotting).
"""

from __future__ import annotations

import itertools
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.core import Context, Result, Target, benchmark

_STAGE = re.compile(r"^\s*([\d.]+) s\s+(.+)$")
_TOTAL = re.compile(r"upload -> first prediction ([\d.]+) s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stage_shares(lines: list[str]) -> tuple[float, dict[str, float]]:
    """(seconds from upload to first prediction, each stage's share of it) from the demo's log."""
    total = next(float(m.group(1)) for line in lines if (m := _TOTAL.search(line)))
    stages = [(float(m.group(1)), m.group(2)) for line in lines if (m := _STAGE.match(line))]
    marks = [(0.0, "upload"), *stages, (total, "prediction")]
    shares: dict[str, float] = {}
    for (start, name), (end, _) in itertools.pairwise(marks):
        shares[name] = round((end - start) / total, 3)  # from this observation to the next
    return total, shares


@benchmark("pipeline", quick=False)
def pipeline(ctx: Context) -> Iterator[Result]:
    """Local stack: upload iris -> first successful prediction (second, warm run)."""
    from dropfit_local.demo import run_demo
    from dropfit_local.stack import LocalStack

    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dropfit-bench-stack-") as state:
        stack = LocalStack(
            state_dir=Path(state),
            log=lambda _: None,
            aws_port=_free_port(),
            api_port=_free_port(),
            sagemaker_port=_free_port(),
        )
        with stack:
            run_demo(stack, say=lambda _: None)  # warms the runtimes
            run_demo(stack, say=lines.append)
    total, shares = stage_shares(lines)
    yield Result(
        "pipeline.upload_to_first_prediction",
        total,
        "s",
        target=Target("value", "<=", 3),
        detail={"stage_shares": shares},
    )
