"""plan_endpoint: what reconcile does, decided from the table's model record and the endpoint."""

from __future__ import annotations

import pytest
from dropfit.aws.sagemaker import EndpointState
from dropfit.deployment import BUSY, Plan, plan_endpoint
from dropfit.records import ModelRecord

OLD, NEW, NEWER = (
    "dropfit-iris-000000000001",
    "dropfit-iris-000000000002",
    "dropfit-iris-00000000003",
)


def record(
    desired: str | None = None, deploying: str | None = None, deployed: str | None = None
) -> ModelRecord:
    return ModelRecord(
        model="iris",
        endpoint="dropfit-iris",
        created_at="2026-01-01T00:00:00.000Z",
        desired_run=desired,
        deploying_run=deploying,
        deployed_run=deployed,
    )


def endpoint(status: str, config: str | None, reason: str | None = None) -> EndpointState:
    return EndpointState(
        name="dropfit-iris", status=status, config_name=config, failure_reason=reason
    )


def test_no_endpoint_creates_one_for_the_desired_run() -> None:
    assert plan_endpoint(record(desired=NEW), None) == Plan(action="create", target=NEW)


def test_no_endpoint_and_nothing_desired_does_nothing() -> None:
    assert plan_endpoint(record(), None) == Plan()


@pytest.mark.parametrize("status", sorted(BUSY))
def test_a_busy_endpoint_is_left_alone(status: str) -> None:
    plan = plan_endpoint(record(desired=NEW, deploying=NEW), endpoint(status, OLD))

    assert plan == Plan(action="wait")


def test_busy_statuses_are_sagemakers_transitional_ones() -> None:
    assert {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"} == BUSY


def test_in_service_with_the_desired_run_marks_it_served() -> None:
    plan = plan_endpoint(
        record(desired=NEW, deploying=NEW, deployed=OLD), endpoint("InService", NEW)
    )

    assert plan == Plan(served=NEW)


def test_in_service_with_the_desired_run_already_recorded_does_nothing_new() -> None:
    plan = plan_endpoint(record(desired=NEW, deployed=NEW), endpoint("InService", NEW))

    assert plan == Plan(served=NEW, action="none")


def test_in_service_on_an_old_config_updates_to_the_newer_desired_run() -> None:
    plan = plan_endpoint(record(desired=NEW, deployed=OLD), endpoint("InService", OLD))

    assert plan == Plan(served=OLD, action="update", target=NEW)


def test_a_rolled_back_update_fails_that_run_and_does_not_retry_it() -> None:
    # we asked for NEW, yet the endpoint is back in service on OLD with a reason
    plan = plan_endpoint(
        record(desired=NEW, deploying=NEW, deployed=OLD),
        endpoint("InService", OLD, "ModelError: the container failed its health check"),
    )

    assert plan == Plan(
        served=OLD,
        failed=NEW,
        failure_reason="ModelError: the container failed its health check",
        action="none",
    )


def test_a_rolled_back_update_with_an_even_newer_run_moves_on_to_it() -> None:
    plan = plan_endpoint(
        record(desired=NEWER, deploying=NEW, deployed=OLD), endpoint("InService", OLD, "boom")
    )

    assert plan == Plan(
        served=OLD, failed=NEW, failure_reason="boom", action="update", target=NEWER
    )


def test_a_failed_first_deployment_fails_its_run() -> None:
    plan = plan_endpoint(
        record(desired=NEW, deploying=NEW), endpoint("Failed", NEW, "image not found")
    )

    assert plan == Plan(failed=NEW, failure_reason="image not found")


def test_a_failed_endpoint_without_a_reason_gets_one() -> None:
    plan = plan_endpoint(record(desired=NEW, deploying=NEW), endpoint("Failed", NEW))

    assert plan == Plan(failed=NEW, failure_reason="the endpoint failed to start")


def test_a_failed_endpoint_we_lost_track_of_fails_its_config() -> None:
    plan = plan_endpoint(record(desired=NEW), endpoint("Failed", NEW, "quota"))

    assert plan.failed == NEW
    assert plan.action == "none"


def test_a_failed_endpoint_is_never_asked_to_update() -> None:
    plan = plan_endpoint(record(desired=NEWER, deploying=NEW), endpoint("Failed", NEW, "boom"))

    assert plan.failed == NEW
    assert plan.action == "recreate"  # SageMaker allows only DeleteEndpoint on a Failed one
    assert plan.target == NEWER


def test_nothing_desired_only_reports_what_is_served() -> None:
    plan = plan_endpoint(record(deployed=OLD), endpoint("InService", OLD))

    assert plan == Plan(served=OLD)
