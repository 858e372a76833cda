"""Handler fixtures: the moto stack built from template.yaml, and each function imported inside it.

Functions create their boto3 clients at import, so they are imported (fresh) only once the mock
is active and their environment (events/env.json) is set: every client they hold is moto's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from dropfit.records import Run, RunStatus
from moto import mock_aws

from tests.conftest import load_function

from .support import (
    METRICS,
    OLD,
    OLD_AT,
    Function,
    LambdaContextStub,
    Stack,
    build_stack,
    function_env,
    region_of_env,
)

Loader = Callable[[str], ModuleType]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    region = region_of_env()
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_REGION", region)
    # Keeping boto3's default session keeps its loaded service models: each test stays fast.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield build_stack(region)


@pytest.fixture
def load(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Loader:
    """Import functions/<name>/app.py with its environment, inside the mock."""

    def load_with_env(name: str) -> ModuleType:
        for variable, value in function_env(name).items():
            monkeypatch.setenv(variable, value)
        return load_function(name)

    return load_with_env


@pytest.fixture
def format_function(load: Loader) -> Function:
    return Function(load("format"), LambdaContextStub(function_name="dropfit-format"))


@pytest.fixture
def deploy_function(load: Loader) -> Function:
    return Function(load("deploy"), LambdaContextStub(function_name="dropfit-deploy"))


@pytest.fixture
def predict_function(load: Loader) -> Function:
    return Function(load("predict"), LambdaContextStub(function_name="dropfit-predict"))


@pytest.fixture
def report_function(load: Loader) -> Function:
    return Function(load("report"), LambdaContextStub(function_name="dropfit-report"))


@pytest.fixture
def manage_function(load: Loader) -> Function:
    return Function(load("manage"), LambdaContextStub(function_name="dropfit-manage"))


@pytest.fixture
def deployed(stack: Stack) -> Run:
    """iris is trained and deployed: the endpoint serves OLD."""
    old = stack.seed_run(OLD, RunStatus.DEPLOYED, created_at=OLD_AT, metrics=METRICS)
    stack.seed_model(desired=old, deployed=OLD)
    return old
