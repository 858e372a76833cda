"""Shared fixtures: offline AWS settings, handler loading, the repo's paths."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
EVENTS = ROOT / "events"

# Never reach a real AWS account from the tests, whatever the machine has configured.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "dropfit-test",
        "POWERTOOLS_METRICS_NAMESPACE": "DropfitTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py fresh, as its own module (every function has an app.py)."""
    module_name = f"dropfit_function_{name}"
    sys.modules.pop(module_name, None)
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def iris_csv() -> bytes:
    return (DATA / "iris.csv").read_bytes()


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def sdk_venv() -> Path:
    """The sagemaker SDK v2's venv (tests/sdk/venv.py): made once; skipped with the reason
    only off CI (there DROPFIT_REQUIRE_SAGEMAKER_SDK turns a venv that cannot be made into a
    failure)."""
    from tests.sdk.venv import REQUIRE, SdkUnavailable, sdk_python

    try:
        return sdk_python()
    except SdkUnavailable as error:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set: {error}")
        pytest.skip(str(error))
