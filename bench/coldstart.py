"""Cold start: importing each function's handler module in a fresh process, as Lambda's init does.

Baseline, in the same run: ``import boto3`` and creating the clients that handler creates (plus,
for the format function, importing pandas, which it cannot do without). The environment is the
one the template gives each function (events/env.json) and looks like Lambda's, so the
Powertools Tracer, where there is one, is enabled and patches as it would there.

Each measurement is a fresh ``python -m bench.coldstart_child ...`` (which imports nothing else).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from statistics import median
from typing import Any

from bench.coldstart_child import HEAVY
from bench.core import ROOT, Context, Result, Target, benchmark, python_env, run_child

FUNCTIONS = {  # function -> (its logical id, the clients its module creates)
    "predict": ("PredictFunction", ("dynamodb", "sagemaker", "sagemaker-runtime", "s3")),
    "deploy": ("DeployFunction", ("dynamodb", "sagemaker", "sns")),
    "format": ("FormatFunction", ("s3", "dynamodb", "sagemaker", "sns")),
}
RUNS, QUICK_RUNS = 9, 3


def lambda_env(function: str) -> dict[str, str]:
    """The function's variables (events/env.json), in an environment that looks like Lambda's."""
    logical_id, _ = FUNCTIONS[function]
    variables = json.loads((ROOT / "events" / "env.json").read_text())[logical_id]
    # python_env drops the caller's AWS_* variables, sam local's endpoints among them.
    return python_env(
        **{k: str(v) for k, v in variables.items()},
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / function),
        AWS_LAMBDA_FUNCTION_NAME=f"dropfit-{function}",
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    )


# --- the benchmark ---------------------------------------------------------------------------


def _median_ms(samples: list[dict[str, Any]]) -> float:
    return median([s["seconds"] for s in samples]) * 1000


@benchmark("coldstart")
def coldstart(ctx: Context) -> Iterator[Result]:
    """Fresh-process import of each handler vs boto3 and its clients (median of 9)."""
    runs = QUICK_RUNS if ctx.quick else RUNS
    for function, (_, clients) in FUNCTIONS.items():
        env = lambda_env(function)
        handler_args = ["-m", "bench.coldstart_child", "handler", function]
        client_args = ["-m", "bench.coldstart_child", "clients", *clients]
        run_child(handler_args, env)  # compiles the bytecode, as a deployed package ships it
        handlers, bases, pandas = [], [], []
        for _ in range(runs):  # interleaved: both see the same machine load
            handlers.append(run_child(handler_args, env))
            bases.append(run_child(client_args, env))
            if function == "format":
                pandas.append(run_child(["-m", "bench.coldstart_child", "pandas"], env))
        baseline = _median_ms(bases) + (_median_ms(pandas) if pandas else 0.0)
        yield Result(
            f"coldstart.{function}",
            _median_ms(handlers),
            "ms",
            baseline=baseline,
            target=Target("ratio", "<=", 1.5),
            detail={
                "baseline": "import boto3 + "
                + ", ".join(clients)
                + (" clients + import pandas" if pandas else " clients"),
                "runs": runs,
                "clients_ms": round(_median_ms(bases), 1),
                **({"pandas_ms": round(_median_ms(pandas), 1)} if pandas else {}),
            },
        )
        if function != "format":
            heavy = sorted({m for h in handlers for m in h["heavy"]})
            yield Result(
                f"coldstart.{function}.heavy_modules",
                float(len(heavy)),
                "modules",
                target=Target("value", "==", 0),
                check=True,
                detail={"imported": heavy, "watched": list(HEAVY)},
            )
