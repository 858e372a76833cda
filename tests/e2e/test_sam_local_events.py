"""What the local stack leaves for ``sam local`` without Docker: the events it delivered, ready
for ``sam local invoke -e .local/events/...`` (its real bucket, version id and training job), and
on loopback no ``sam-env.json`` but a note naming the ``--host`` that gives one (the invokes
themselves: tests/local/test_sam_local.py, where Docker runs)."""

from __future__ import annotations

import json

import pytest

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e


def test_the_last_upload_and_training_events_are_kept_as_is_for_sam_local(local: Local) -> None:
    version = local.upload("sam-events.csv", IRIS)
    run = local.wait_for_new_run("sam-events")["latest_run"]["run"]
    events = local.state_dir / "events"

    upload = json.loads((events / "FormatFunction.ObjectCreated.json").read_text())
    training = json.loads((events / "DeployFunction.TrainingStateChange.json").read_text())

    assert upload["detail-type"] == "Object Created"
    assert upload["detail"]["bucket"]["name"] == local.bucket
    assert upload["detail"]["object"]["key"] == f"{local.incoming}sam-events.csv"
    assert upload["detail"]["object"]["version-id"] == version
    assert training["detail-type"] == "SageMaker Training Job State Change"
    assert training["detail"]["TrainingJobName"] == run
    assert training["detail"]["TrainingJobStatus"] == "Completed"


def test_a_loopback_stack_writes_no_sam_env_and_says_which_host_to_use(local: Local) -> None:
    assert str(local.outputs["ApiUrl"]).startswith("http://127.0.0.1:")
    assert not (local.state_dir / "sam-env.json").exists()
    note = [line for line in local.log_path.read_text().splitlines() if "sam-env.json" in line]
    assert note and "cannot reach 127.0.0.1; start the stack with --host" in note[0], note
