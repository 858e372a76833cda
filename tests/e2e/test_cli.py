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

from .stack import DATA, IRIS, Local, run_stack

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


def _relabelled(body: bytes) -> bytes:
    """iris with other class names: a run whose label map differs from iris'."""
    return (
        body.replace(b"setosa", b"small")
        .replace(b"versicolor", b"medium")
        .replace(b"virginica", b"large")
    )


def _sagemaker_names(local: Local, prefix: str) -> list[str]:
    """Every endpoint, endpoint config and SageMaker model whose name starts with ``prefix``."""
    sagemaker = local.sagemaker
    return sorted(
        [e["EndpointName"] for e in sagemaker.list_endpoints(NameContains=prefix)["Endpoints"]]
        + [
            c["EndpointConfigName"]
            for c in sagemaker.list_endpoint_configs(NameContains=prefix)["EndpointConfigs"]
        ]
        + [m["ModelName"] for m in sagemaker.list_models(NameContains=prefix)["Models"]]
    )


def test_rollback_runs_and_delete_end_to_end(
    dropfit: CliRunner, local: Local, tmp_path: Path
) -> None:
    upload = tmp_path / "cli-life.csv"  # one key: the model's name and its owner
    upload.write_bytes((DATA / "iris.csv").read_bytes())
    first = dropfit.invoke(cli, ["train", str(upload), "--json"])
    upload.write_bytes(_relabelled((DATA / "iris.csv").read_bytes()))
    second = dropfit.invoke(cli, ["train", str(upload), "--json"])
    assert first.exit_code == second.exit_code == 0, (first.output, second.output)
    first_run, second_run = json.loads(first.output)["run"], json.loads(second.output)["run"]
    predicted = json.loads(dropfit.invoke(cli, ["predict", "cli-life", *IRIS_ROW, "--json"]).output)
    assert (predicted["run"], predicted["predictions"]) == (second_run, [{"label": "small"}])

    runs = json.loads(dropfit.invoke(cli, ["runs", "cli-life", "--json"]).output)
    assert [(r["run"], r["can_roll_back"]) for r in runs["runs"]] == [
        (second_run, False),
        (first_run, True),
    ]
    rolled = dropfit.invoke(cli, ["rollback", "cli-life"])

    assert rolled.exit_code == 0, rolled.output
    assert f"run {first_run} serves model cli-life again, in place of {second_run}" in rolled.output
    predicted = json.loads(dropfit.invoke(cli, ["predict", "cli-life", *IRIS_ROW, "--json"]).output)
    assert (predicted["run"], predicted["predictions"]) == (first_run, [{"label": "setosa"}])

    deleted = dropfit.invoke(cli, ["delete", "cli-life", "--yes", "--json"])

    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.output)["status"] == "deleted"
    local.wait_until(
        "every endpoint, config and model of cli-life gone",
        lambda: not _sagemaker_names(local, f"{local.prefix}-cli-life"),
    )
    gone = dropfit.invoke(cli, ["predict", "cli-life", *IRIS_ROW])
    assert gone.exit_code == FAILED and "was deleted" in gone.output
    upload.write_bytes((DATA / "iris.csv").read_bytes() + b"\n")
    again = dropfit.invoke(cli, ["train", str(upload)])
    assert again.exit_code == 0, again.output
    assert "setosa" in dropfit.invoke(cli, ["predict", "cli-life", *IRIS_ROW]).output


def test_destroy_removes_a_local_stacks_sagemaker_resources_and_keeps_anothers(
    local: Local, tmp_path: Path
) -> None:
    options = ("--stack-name", "dropfit-local-doomed", "--join", str(local.outputs_path))
    with run_stack(tmp_path, *options) as doomed:
        local.upload("cli-doomed.csv", IRIS)
        doomed.upload("cli-doomed.csv", IRIS)
        assert local.wait_for_new_run("cli-doomed")["status"] == "ready"
        assert doomed.wait_for_new_run("cli-doomed")["status"] == "ready"
        ours, theirs = f"{local.prefix}-cli-doomed", f"{doomed.prefix}-cli-doomed"
        kept = _sagemaker_names(local, ours)
        resources = _sagemaker_names(local, theirs)
        assert theirs in resources and len(resources) == 3  # endpoint, its config, its model
        runner = CliRunner(env={"DROPFIT_STATE_DIR": str(doomed.state_dir)})

        listed = runner.invoke(cli, ["destroy", "--dry-run", "--json"])
        assert listed.exit_code == 0, listed.output
        summary = json.loads(listed.output)
        assert summary["endpoints"] == [theirs]
        assert (
            sorted(summary["endpoints"] + summary["endpoint_configs"] + summary["sagemaker_models"])
            == resources
        )
        assert _sagemaker_names(local, theirs) == resources  # a dry run deletes nothing

        done = runner.invoke(cli, ["destroy", "--yes"])

        assert done.exit_code == 0, done.output
        assert f"deleted endpoints: {theirs}" in done.output
        local.wait_until(
            "the doomed stack's resources gone", lambda: not _sagemaker_names(local, theirs)
        )
        assert _sagemaker_names(local, ours) == kept
        assert local.predict("cli-doomed", [[5.1, 3.5, 1.4, 0.2]]).status_code == 200
