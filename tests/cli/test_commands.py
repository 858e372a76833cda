"""``dropfit`` in process without a stack: its help, its imports, its options' form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dropfit_cli.main import cli
from dropfit_cli.training import example_values, metadata

HEAVY = {"pandas", "numpy", "matplotlib", "dropfit_local", "boto3", "botocore", "rich", "moto"}
COMMANDS = {
    "train",
    "predict",
    "models",
    "status",
    "report",
    "runs",
    "delete",
    "rollback",
    "destroy",
    "up",
    "demo",
}


def test_help_lists_every_command_and_the_exit_statuses() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {
        line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()
    }
    assert listed >= COMMANDS
    assert "3 no stack to talk to" in result.output.replace("\n  ", " ")


def test_help_imports_nothing_heavy() -> None:
    """What ``dropfit --help`` loads (its time is make bench's: bench/cli.py)."""
    code = (
        "import sys\n"
        "from dropfit_cli.main import cli\n"
        "try:\n"
        "    cli(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in done.stdout.splitlines()[-1].split()}
    assert "click" in loaded
    assert not loaded & HEAVY, loaded & HEAVY


def test_options_become_metadata_by_name() -> None:
    chosen = metadata(
        name="iris-2",
        label="Species",
        k="3",
        options=("test_fraction=0.2", "hp-index_metric=COSINE"),
    )
    assert chosen == {
        "name": "iris-2",
        "label": "Species",
        "k": "3",
        "test_fraction": "0.2",
        "hp-index_metric": "COSINE",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [(("k=3",), "option 'k' is given twice"), (("nothing",), "expected NAME=VALUE")],
)
def test_option_mistakes_are_usage_errors(options: tuple[str, ...], message: str) -> None:
    with pytest.raises(click.UsageError, match=message):
        metadata(name=None, label=None, k="1", options=options)


def test_the_example_predict_call_uses_the_first_row_in_training_order(tmp_path: Path) -> None:
    upload = tmp_path / "wine.csv"
    upload.write_text("quality,Alcohol,acid\nhigh,12.5,0.3\n")
    assert example_values(upload, ["acid", "alcohol"]) == ["0.3", "12.5"]
    assert example_values(upload, ["sugar"]) == ["<sugar>"]
