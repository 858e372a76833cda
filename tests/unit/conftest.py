"""Fixtures shared by the formatter's unit tests."""

from __future__ import annotations

import pytest
from dropfit import csvscan


@pytest.fixture
def reference_engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per time the formatter falls back to the reference engine (csvscan.scan)."""
    calls: list[str] = []
    scan = csvscan.scan

    def spy(*args: object, **kwargs: object) -> csvscan.Scan:
        calls.append("reference")
        return scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(csvscan, "scan", spy)
    return calls
