"""Two stacks in one account and region: one moto (S3, EventBridge, DynamoDB ...), one local
SageMaker, the same upload to both. Each trains, deploys and serves its own model; neither
stack's rules deliver, nor its functions touch, the other's training jobs or endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from .stack import IRIS, Local, run_stack

pytestmark = pytest.mark.e2e

FLOWER = [[5.1, 3.5, 1.4, 0.2]]
OTHER_STACK = "dropfit-local-twin"


def _serves_its_own_run(stack: Local, shared: Local, description: dict[str, object]) -> str:
    run = str(description["deployed_run"]["run"])  # type: ignore[index]
    assert run.startswith(f"{stack.prefix}-twin-"), run
    endpoint = shared.sagemaker.describe_endpoint(EndpointName=f"{stack.prefix}-twin")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", run)
    answer = stack.predict("twin", FLOWER)
    assert (answer.status_code, answer.json()["run"]) == (200, run)
    return run


def test_two_stacks_sharing_an_account_never_touch_each_others_models(
    local: Local, tmp_path: Path
) -> None:
    options = ("--stack-name", OTHER_STACK, "--join", str(local.outputs_path))
    with run_stack(tmp_path, *options) as other:
        # One account: the same moto and SageMaker, resources and prefixes of their own.
        assert other.outputs["AwsEndpointUrl"] == local.outputs["AwsEndpointUrl"]
        assert other.outputs["SageMakerEndpointUrl"] == local.outputs["SageMakerEndpointUrl"]
        assert other.bucket != local.bucket
        assert not f"{other.prefix}-".startswith(f"{local.prefix}-")
        assert not f"{local.prefix}-".startswith(f"{other.prefix}-")

        local.upload("twin.csv", IRIS)
        other.upload("twin.csv", IRIS)
        ours, theirs = local.wait_for_new_run("twin"), other.wait_for_new_run("twin")

        assert ours["status"] == theirs["status"] == "ready", (ours, theirs)
        assert ours["endpoint"]["name"] == f"{local.prefix}-twin"
        assert theirs["endpoint"]["name"] == f"{other.prefix}-twin"
        our_run = _serves_its_own_run(local, local, ours)
        their_run = _serves_its_own_run(other, local, theirs)

        # The other stack retrains: its endpoint is updated, ours is left as it was.
        other.upload("twin.csv", IRIS + b"\n")
        retrained = other.wait_for_new_run("twin", previous=their_run)
        assert retrained["status"] == "ready", retrained
        assert _serves_its_own_run(other, local, retrained) != their_run
        assert _serves_its_own_run(local, local, local.describe("twin") or {}) == our_run
        assert [j["TrainingJobName"] for j in local.training_jobs(f"{local.prefix}-twin-")] == [
            our_run
        ]

        # No event about one stack's jobs or endpoints reached the other's functions.
        for stack, stranger in ((local, other), (other, local)):
            deploy_lines = stack.log_lines("deploy")
            assert any(f"{stack.prefix}-twin" in line for line in deploy_lines)
            assert not [line for line in deploy_lines if f"{stranger.prefix}-" in line]
            assert not [line for line in stack.log_lines("format") if stranger.bucket in line]
