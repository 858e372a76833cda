"""``dropfit demo`` (what ``make demo`` runs) as a newcomer sees it: a fresh local stack, the
progress of the run on screen, the Lambdas' log lines in a file whose path is printed first,
then the tutorial's table and figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DROPFIT = Path(sys.executable).parent / "dropfit"  # the console script make install puts there
STAGES = ("formatting", "training", "deploying", "ready")


def test_demo_shows_progress_and_the_table_and_logs_the_lambdas_to_a_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(DROPFIT), "demo", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    log = tmp_path / "demo.log"
    assert lines[0] == f"Starting the local stack (its log and the Lambdas': {log})"
    shown = [line.split()[-1] for line in lines if line.strip().endswith(STAGES)]
    assert shown[:4] == list(STAGES)  # one line per stage, with its time
    assert any(line.startswith("run ") and ": ready (formatting " in line for line in lines)
    assert "accuracy 0.9736842105263158 (37/38)" in done.stdout
    assert "upload -> first prediction" in done.stdout
    # The Lambdas' own lines are in the file, not on screen.
    logged = log.read_text()
    for function in ("format", "deploy", "predict"):
        assert f"\n[{function}" in logged, function
        assert not [line for line in lines if line.startswith(f"[{function}")]
