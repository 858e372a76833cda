"""``dropfit`` against the running local stack, in process (click's CliRunner).

The CLI finds the stack through ``$DROPFIT_STATE_DIR`` (its outputs.json), as it finds
``.local/`` after ``dropfit up``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dropfit_cli.main import FAILED, NO_STACK, USAGE, cli

from .stack import DATA, Local

pytestmark = pytest.mark.e2e

IRIS_ROW = ["5.1", "3.5", "1.4", "0.2"]  # the first row of tests/data/iris.csv: setosa


@pytest.fixture(scope="module")
def dropfit(local: Local) -> CliRunner:
    return CliRunner(env={"DROPFIT_STATE_DIR": str(local.state_dir)})


@pytest.fixture(scope="module")
def trained(dropfit: CliRunner) -> Result:
    """``dropfit train iris.csv --name cli-iris --k 1``: the tutorial through the CLI."""
    result = dropfit.invoke(
        cli, ["train", str(DATA / "iris.csv"), "--name", "cli-iris", "--k", "1"]
    )
    assert result.exit_code == 0, result.output
    return result


def test_train_follows_every_stage_and_ends_with_metrics_and_a_predict_call(
    trained: Result,
) -> None:
    lines = trained.output.splitlines()
    shown = [line.split()[-1] for line in lines if line.strip().endswith(tuple(STAGE_WORDS))]
    assert shown == list(STAGE_WORDS)  # formatting -> training -> deploying -> ready
    assert "test:accuracy 0.9736842105263158" in trained.output
    assert "try it: dropfit predict cli-iris 5.1 3.5 1.4 0.2" in trained.output
    summary = next(line for line in lines if line.startswith("run ") and ": ready (" in line)
    for stage in STAGE_WORDS[:-1]:
        assert f"{stage} " in summary  # each stage's time


STAGE_WORDS = ("formatting", "training", "deploying", "ready")


def test_the_example_predict_call_answers(trained: Result, dropfit: CliRunner) -> None:
    result = dropfit.invoke(cli, ["predict", "cli-iris", *IRIS_ROW])
    assert result.exit_code == 0, result.output
    assert "setosa" in result.output


def test_predict_json_and_the_neighbours_option(trained: Result, dropfit: CliRunner) -> None:
    result = dropfit.invoke(cli, ["predict", "cli-iris", ",".join(IRIS_ROW), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["model"] == "cli-iris" and answer["count"] == 1
    assert answer["predictions"] == [{"label": "setosa"}]
    # The stack's default (AllowNeighbors=false) refuses them: the API's own reason, status 1.
    neighbours = dropfit.invoke(cli, ["predict", "cli-iris", *IRIS_ROW, "--neighbors"])
    assert neighbours.exit_code == FAILED
    assert "Neighbours are disabled on this API" in neighbours.output


def test_predict_reads_csv_rows_from_a_file_and_from_stdin(
    trained: Result, dropfit: CliRunner, tmp_path: Path
) -> None:
    rows = "Petal.Width,Petal.Length,Sepal.Width,Sepal.Length\n0.2,1.4,3.5,5.1\n2.3,5.4,3.0,6.2\n"
    (tmp_path / "rows.csv").write_text(rows)
    from_file = dropfit.invoke(cli, ["predict", "cli-iris", "--file", str(tmp_path / "rows.csv")])
    from_stdin = dropfit.invoke(cli, ["predict", "cli-iris", "-", "--json"], input=rows)
    assert from_file.exit_code == 0, from_file.output
    assert from_stdin.exit_code == 0, from_stdin.output
    labels = [p["label"] for p in json.loads(from_stdin.output)["predictions"]]
    assert labels == ["setosa", "virginica"]
    assert "setosa" in from_file.output and "virginica" in from_file.output


def test_models_and_status_show_the_served_run(trained: Result, dropfit: CliRunner) -> None:
    listed = json.loads(dropfit.invoke(cli, ["models", "--json"]).output)
    assert "cli-iris" in [m["model"] for m in listed["models"]]
    status = dropfit.invoke(cli, ["status", "cli-iris"])
    assert status.exit_code == 0, status.output
    assert "ready" in status.output and "Sepal.Length" in status.output
    assert "(InService)" in status.output
    described = json.loads(dropfit.invoke(cli, ["status", "cli-iris", "--json"]).output)
    assert described["status"] == "ready"


def test_report_shows_the_served_runs_figures_and_its_page(
    trained: Result, dropfit: CliRunner
) -> None:
    deadline = time.monotonic() + 120  # the report function runs once the endpoint is in service
    while (result := dropfit.invoke(cli, ["report", "cli-iris", "--json"])).exit_code:
        assert "404" in result.output and time.monotonic() < deadline, result.output
        time.sleep(0.5)
    assert json.loads(result.output)["metrics"]["accuracy"] == 0.9736842105263158
    shown = dropfit.invoke(cli, ["report", "cli-iris"])
    assert shown.exit_code == 0, shown.output
    assert "accuracy 0.9737" in shown.output and "page (valid" in shown.output


def test_a_refused_upload_ends_with_its_reason_and_status_1(
    dropfit: CliRunner, tmp_path: Path
) -> None:
    upload = tmp_path / "cli-refused.csv"
    upload.write_bytes((DATA / "iris.csv").read_bytes())
    result = dropfit.invoke(cli, ["train", str(upload), "--label", "no-such-column"])
    assert result.exit_code == FAILED, result.output
    assert "failed" in result.output
    assert "no-such-column" in result.output  # the format function's reason, as it said it


def test_an_unknown_option_is_refused_by_the_stack_with_its_name(
    dropfit: CliRunner, tmp_path: Path
) -> None:
    upload = tmp_path / "cli-typo.csv"
    upload.write_bytes((DATA / "iris.csv").read_bytes())
    result = dropfit.invoke(cli, ["train", str(upload), "-o", "test_fractoin=0.2", "--json"])
    assert result.exit_code == FAILED
    summary = json.loads(result.stdout.split("\nError:")[0])
    assert summary["outcome"] == "failed"
    assert "test_fractoin" in summary["reason"]


def test_a_name_another_key_owns_is_refused_with_its_reason(
    trained: Result, dropfit: CliRunner, tmp_path: Path
) -> None:
    other = tmp_path / "cli-other.csv"
    other.write_bytes((DATA / "iris.csv").read_bytes())
    result = dropfit.invoke(cli, ["train", str(other), "--name", "cli-iris"])
    assert result.exit_code == FAILED, result.output
    assert "refused" in result.output
    assert "iris.csv" in result.output  # the key that owns the name


def test_api_errors_keep_their_message_and_end_with_status_1(
    trained: Result, dropfit: CliRunner
) -> None:
    unknown = dropfit.invoke(cli, ["predict", "never-trained", "1", "2"])
    assert unknown.exit_code == FAILED
    assert "No model named 'never-trained'" in unknown.output
    short = dropfit.invoke(cli, ["predict", "cli-iris", "1", "2"])
    assert short.exit_code == FAILED
    assert "the model expects 4" in short.output


def test_bad_usage_is_status_2(dropfit: CliRunner) -> None:
    assert dropfit.invoke(cli, ["predict", "cli-iris", "1", "x"]).exit_code == USAGE
    assert dropfit.invoke(cli, ["predict", "cli-iris"]).exit_code == USAGE
    assert dropfit.invoke(cli, ["train", "/no/such.csv"]).exit_code == USAGE


def test_no_stack_is_status_3(tmp_path: Path) -> None:
    runner = CliRunner(env={"DROPFIT_STATE_DIR": str(tmp_path)})
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == NO_STACK
    assert "dropfit up" in result.output


def test_predict_imports_nothing_heavy(trained: Result, local: Local) -> None:
    """``dropfit predict`` in a fresh interpreter: its modules, not its time (make bench)."""
    code = (
        "import sys\n"
        "from dropfit_cli.main import cli\n"
        "try:\n"
        f"    cli(['predict', 'cli-iris', {', '.join(map(repr, IRIS_ROW))}])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"DROPFIT_STATE_DIR": str(local.state_dir), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "setosa" in done.stdout
    loaded = set(done.stdout.split("\n")[-2].split())
    assert not loaded & HEAVY, loaded & HEAVY


HEAVY = {"pandas", "numpy", "matplotlib", "dropfit_local", "boto3", "moto", "requests"}
