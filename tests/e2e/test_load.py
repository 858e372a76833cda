"""The load test, briefly, against the session's stack (``make load`` runs it for 60 s).

Sustained one-row predictions from several clients: every request must be answered, and the
memory of the stack's processes must not grow from the first window of the run to the last.
"""

from __future__ import annotations

import os

import pytest

from tests.load.driver import feature_rows, run_load

from .stack import DATA, IRIS, Local

pytestmark = [pytest.mark.e2e, pytest.mark.load]

SECONDS = float(os.environ.get("DROPFIT_LOAD_SECONDS", "10"))
CLIENTS = 8
MAX_GROWTH = 0.10  # of the stack's total RSS: noise, not a leak


def test_sustained_predictions_are_all_served_and_the_stack_does_not_grow(local: Local) -> None:
    local.upload("steady-load.csv", IRIS)
    assert local.wait_for_new_run("steady-load")["status"] == "ready"
    url = f"{local.api}/models/steady-load/predict"
    rows = feature_rows(DATA / "iris.csv")
    # warm up: runtimes, connections, caches
    run_load(url, rows, seconds=2, clients=CLIENTS, auth=local.signed)

    result = run_load(
        url,
        rows,
        seconds=SECONDS,
        clients=CLIENTS,
        stack_pid=local.pid,
        window_seconds=3,
        auth=local.signed,
    )

    print(f"\n{result.report()}")
    assert result.served > 0
    assert result.error_count == 0, result.errors
    assert result.memory_growth < MAX_GROWTH, result.report()
