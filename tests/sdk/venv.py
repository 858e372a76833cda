"""The sagemaker SDK v2's own virtualenv (.local/sagemaker-v2), made on first use from PyPI."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
VENV = ROOT / ".local" / "sagemaker-v2"
# CI sets it (.ci/run): there a venv that cannot be made fails the tests instead of skipping them.
REQUIRE = "DROPFIT_REQUIRE_SAGEMAKER_SDK"


class SdkUnavailable(RuntimeError):
    """The SDK's venv could not be made (no network to PyPI, no uv or pip)."""


def sdk_python() -> Path:
    """The venv's interpreter, after making the venv if it is missing or its pins changed."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    stamp = VENV / ".requirements-sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    with (VENV.parent / ".sagemaker-v2.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        _create(python)
        stamp.write_text(wanted)
    return python


def _create(python: Path) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    uv = shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", base, str(VENV)],
            [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(REQUIREMENTS)],
        ]
    else:
        steps = [
            [base, "-m", "venv", str(VENV)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            raise SdkUnavailable(
                f"could not install {REQUIREMENTS.relative_to(ROOT)} into "
                f"{VENV.relative_to(ROOT)}: {' '.join(step[:3])} said: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )


# The SDK's defaults file: no telemetry (this machine may not reach its endpoint).
SDK_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def run_sdk(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with the SDK venv's interpreter; its completed process."""
    python = sdk_python()
    config = VENV / "sagemaker-config.yaml"
    config.write_text(SDK_CONFIG)
    environment = {
        **os.environ,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        **(env or {}),
    }
    return subprocess.run(
        [str(python), "-W", "ignore", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
