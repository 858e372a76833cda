"""Package size: what ``sam build`` produces for each function and for the shared layer.

Full mode only (it downloads wheels). Sizes are unzipped, as Lambda counts its 250 MB limit; the
predict function's own package must stay small, and free of pandas and numpy, for a lean cold
start (its dependencies come with the layer).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.core import ROOT, Context, Result, Target, benchmark

ARTIFACTS = ("PredictFunction", "DeployFunction", "FormatFunction", "SharedLayer")
MB = 1_000_000


def python313() -> Path | None:
    """A python3.13 with pip (sam build runs it): on PATH, else pyenv's."""
    on_path = shutil.which("python3.13")
    candidates = [Path(on_path)] if on_path else []
    candidates += sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    for candidate in candidates:
        probe = subprocess.run(
            [str(candidate), "-m", "pip", "--version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return candidate
    return None


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@benchmark("package", quick=False)
def package(ctx: Context) -> Iterator[Result]:
    """sam build output per function and layer, MB unzipped."""
    python = python313()
    if python is None:
        raise RuntimeError("sam build needs a python3.13 with pip (PATH or pyenv)")
    build = ctx.workdir / "build"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "SAM_CLI_TELEMETRY": "0",
            "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("sam")),
            "build",
            "--template-file",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build),
            "--cache-dir",
            str(ctx.workdir / "cache"),
        ],
        cwd=ctx.workdir,  # sam keeps dependency folders under the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stdout[-2000:] + completed.stderr[-2000:])
    for name in ARTIFACTS:
        folder = build / name
        bundled = sorted(p.name for p in folder.iterdir()) if name != "SharedLayer" else []
        heavy = sorted(set(bundled) & {"pandas", "numpy", "pyarrow"})
        yield Result(
            f"package.{name}",
            _size(folder) / MB,
            "MB",
            target=Target("value", "<=", 1) if name == "PredictFunction" else None,
            detail={"heavy": heavy} if name != "SharedLayer" else {},
        )
