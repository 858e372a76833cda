"""Package size: what ``sam build`` produces for each function and for the shared layer.

Full mode only (it downloads wheels). Sizes are unzipped, as Lambda counts its 250 MB limit; the
predict function's own package must stay small, and free of pandas and numpy, for a lean cold
start (its dependencies come with the layer).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.coldstart_child import HEAVY
from bench.core import ROOT, Context, Result, Target, benchmark

ARTIFACTS = ("PredictFunction", "DeployFunction", "FormatFunction", "SharedLayer")
MB = 1_000_000
SAM = Path(sys.executable).with_name("sam")


def python313() -> Path | None:
    """A python3.13 with pip (sam build runs it): the one this venv was made from, else on PATH."""
    base = Path(sys.base_prefix) / "bin" / "python3.13"
    on_path = [Path(d) / "python3.13" for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for candidate in dict.fromkeys([base, *on_path]):
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [str(candidate), "-m", "pip", "--version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return candidate
    return None


def sam_build(build: Path, python: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``sam build`` of template.yaml into ``build``, its cache beside it, with ``python`` first
    on PATH and no AWS credentials. It runs in ``build``'s parent: SAM keeps dependency folders
    under the working directory, which must not be the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "SAM_CLI_TELEMETRY": "0",
            "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return subprocess.run(
        [
            str(SAM),
            "build",
            "--template-file",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build),
            "--cache-dir",
            str(build.parent / "cache"),
        ],
        cwd=build.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@benchmark("package", quick=False)
def package(ctx: Context) -> Iterator[Result]:
    """sam build output per function and layer, MB unzipped."""
    python = python313()
    if python is None:
        raise RuntimeError("sam build needs a python3.13 with pip (this venv's base, or on PATH)")
    build = ctx.workdir / "build"
    completed = sam_build(build, python, timeout=900)
    if completed.returncode != 0:
        raise RuntimeError(completed.stdout[-2000:] + completed.stderr[-2000:])
    for name in ARTIFACTS:
        folder = build / name
        bundled = sorted(p.name for p in folder.iterdir()) if name != "SharedLayer" else []
        heavy = sorted(set(bundled).intersection(HEAVY))
        yield Result(
            f"package.{name}",
            _size(folder) / MB,
            "MB",
            target=Target("value", "<=", 1) if name == "PredictFunction" else None,
            detail={"heavy": heavy} if name != "SharedLayer" else {},
        )
