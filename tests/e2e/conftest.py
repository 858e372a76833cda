"""One local stack per test session (see :mod:`tests.e2e.stack`).

It runs two runtimes per function, so events and requests really race, and with test-only fault
injection (``--fault-injection``: nothing fails unless a test injects a fault).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stack import Local, run_stack

RUNTIMES_PER_FUNCTION = 2


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state = tmp_path_factory.mktemp("local-stack")
    options = ("--concurrency", str(RUNTIMES_PER_FUNCTION), "--fault-injection")
    with run_stack(state, *options) as stack:
        yield stack
