"""The SDK venv as a fixture: made once per session; skipped (with the reason) only off CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sdk.venv import REQUIRE, SdkUnavailable, sdk_python


@pytest.fixture(scope="session")
def sdk_venv() -> Path:
    try:
        return sdk_python()
    except SdkUnavailable as error:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set: {error}")
        pytest.skip(str(error))
