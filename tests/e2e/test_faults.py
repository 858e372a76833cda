"""Faults on the local stack: nothing is lost, the previous model keeps serving, the run says why.

Crashes and failed endpoint deployments are injected with the stack's test-only fault injection
(``dropfit_local.faults``; the session's stack runs with ``--fault-injection``), never by changing
a handler. Training fails the natural way, on a hyperparameter the k-NN algorithm refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dropfit_local import faults
from tests.template_utils import load_template

from .stack import IRIS, Local, Messages

pytestmark = pytest.mark.e2e

FORMAT = load_template()["Resources"]["FormatFunction"]["Properties"]
# Lambda's asynchronous retries of a failed invocation, as the template configures them.
RETRIES = int(FORMAT["EventInvokeConfig"]["MaximumRetryAttempts"])
HEALTH_CHECK = (
    "The primary container for production variant {run} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


@pytest.fixture
def notices(local: Local) -> Any:
    with local.failure_notices() as messages:
        yield messages


def notice_about(notices: Messages, run: str) -> dict[str, Any]:
    """The failure topic's message about ``run`` (SNS wraps it in its JSON envelope)."""
    (message,) = notices.wait_for(run)
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    notice: dict[str, Any] = json.loads(envelope["Message"])
    return {"subject": envelope.get("Subject"), **notice}


def serve(local: Local, model: str, **metadata: str) -> str:
    """Upload iris as ``model`` and wait until it serves; its run."""
    local.upload(f"{model}.csv", IRIS, metadata)
    description = local.wait_for_new_run(model)
    assert description["status"] == "ready", description
    return str(description["deployed_run"]["run"])


def answered_by(local: Local, model: str) -> str:
    response = local.predict(model, [[5.1, 3.5, 1.4, 0.2]])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"] == [{"label": "setosa"}]
    return str(answer["run"])


def test_a_failed_training_job_is_recorded_notified_and_the_previous_model_keeps_serving(
    local: Local, notices: Messages
) -> None:
    good_run = serve(local, "steady")

    local.upload("steady.csv", IRIS, metadata={"hp-index_metric": "BOGUS"})
    after = local.wait_for_new_run("steady", previous=good_run)

    failed = after["latest_run"]
    assert failed["status"] == "FAILED"
    assert failed["reason"].startswith("Training job failed: ")
    assert "index_metric" in failed["reason"] and "BOGUS" in failed["reason"]
    job = local.sagemaker.describe_training_job(TrainingJobName=failed["run"])
    assert job["TrainingJobStatus"] == "Failed"
    assert failed["reason"] == f"Training job failed: {job['FailureReason']}"
    assert notice_about(notices, failed["run"]) == {
        "subject": "Dropfit: steady failed at training",
        "model": "steady",
        "run": failed["run"],
        "stage": "training",
        "reason": failed["reason"],
    }
    assert (after["status"], after["deployed_run"]["run"]) == ("ready", good_run)
    assert answered_by(local, "steady") == good_run


def test_a_handler_that_crashes_fewer_times_than_the_retries_allow_handles_the_event(
    local: Local,
) -> None:
    target = "function:FormatFunction"
    faults.inject(local.faults_dir, target, RETRIES, match="incoming/shaky.csv")

    local.upload("shaky.csv", IRIS)
    description = local.wait_for_new_run("shaky")

    assert description["status"] == "ready"
    assert faults.fired(local.faults_dir, target) == RETRIES
    for attempt in range(1, RETRIES + 1):
        assert local.log_count(f"incoming/shaky.csv -> format: attempt {attempt} failed") == 1
    assert local.log_count(f"incoming/shaky.csv -> format: attempt {RETRIES + 1} ok") == 1
    assert local.log_count("incoming/shaky.csv -> format: failed after") == 0


def test_a_handler_crashing_past_its_retries_dead_letters_the_event_intact_for_a_redrive(
    local: Local,
) -> None:
    key = "incoming/crashy.csv"
    target = "function:FormatFunction"
    dead_letters = Messages(local, str(local.outputs["DeadLetterQueueUrl"]))
    faults.inject(local.faults_dir, target, RETRIES + 1, match=key)
    with local.spy_on_uploads(key) as spy:
        version = local.upload("crashy.csv", IRIS)
        (original,) = spy.wait_for(key)

        (dead,) = dead_letters.wait_for(key)

    # Every attempt the template allows was made, then the event was dead-lettered intact.
    assert faults.fired(local.faults_dir, target) == RETRIES + 1
    assert dead["Body"] == original["Body"]  # byte for byte
    attributes = {name: a["StringValue"] for name, a in dead["MessageAttributes"].items()}
    assert attributes["ErrorType"] == "InjectedFault"
    assert attributes["ErrorMessage"] == (
        f"Injected fault {RETRIES + 1} of {RETRIES + 1} on {target} (test only)"
    )
    assert attributes["ErrorCode"] == "200"  # the function failed, not its delivery
    assert attributes["FailureKind"] == "FunctionError"
    assert attributes["Attempts"] == str(RETRIES + 1)
    assert attributes["RequestID"]
    assert attributes["FunctionName"] == "dropfit-local-FormatFunction"
    assert local.log_count(f"{key} -> format: failed after {RETRIES + 1} attempt(s)") == 1
    # Nothing happened on the event's behalf, and the upload is untouched.
    assert local.describe("crashy") is None
    assert local.training_jobs(f"{local.prefix}-crashy-") == []
    stored = local.s3.get_object(Bucket=local.bucket, Key=key)
    assert (stored["VersionId"], stored["Body"].read()) == (version, IRIS)

    # The fault is gone; the operator re-drives the dead letter to the function's rule queue.
    faults.clear(local.faults_dir, target)
    queue = local.outputs["DeliveryQueueUrls"]["FormatFunction.ObjectCreated"]
    local.sqs.send_message(QueueUrl=queue, MessageBody=dead["Body"])
    description = local.wait_for_new_run("crashy")

    assert description["status"] == "ready"
    assert description["latest_run"]["source"]["key"] == key
    assert [job["TrainingJobName"] for job in local.training_jobs(f"{local.prefix}-crashy-")] == [
        description["deployed_run"]["run"]
    ]
    assert answered_by(local, "crashy") == description["deployed_run"]["run"]
    assert [m for m in dead_letters.drain() if key in m["Body"]] == [dead]  # no second one


def test_a_failed_endpoint_update_keeps_the_previous_model_serving_and_the_run_says_why(
    local: Local, notices: Messages
) -> None:
    good_run = serve(local, "sturdy")
    target = f"endpoint:{local.prefix}-sturdy"
    faults.inject(local.faults_dir, target, 1)

    local.upload("sturdy.csv", IRIS, metadata={"k": "3"})
    after = local.wait_for_new_run("sturdy", previous=good_run)

    failed = after["latest_run"]
    reason = HEALTH_CHECK.format(run=failed["run"])
    assert (failed["status"], failed["reason"]) == ("FAILED", f"Deployment failed: {reason}")
    assert faults.fired(local.faults_dir, target) == 1
    endpoint = local.sagemaker.describe_endpoint(EndpointName=f"{local.prefix}-sturdy")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", good_run)
    assert endpoint["FailureReason"] == reason  # SageMaker rolled the update back
    assert after["status"] == "ready"
    assert after["deployed_run"]["run"] == good_run
    assert after["endpoint"] == {"name": f"{local.prefix}-sturdy", "status": "InService",
                                 "failure_reason": reason}  # fmt: skip
    assert answered_by(local, "sturdy") == good_run
    notice = notice_about(notices, failed["run"])
    assert (notice["stage"], notice["reason"]) == ("deployment", failed["reason"])

    # The endpoint is not stuck: the next upload deploys.
    local.upload("sturdy.csv", IRIS, metadata={"k": "5"})
    recovered = local.wait_for_new_run("sturdy", previous=failed["run"])
    assert recovered["status"] == "ready"
    assert answered_by(local, "sturdy") == recovered["deployed_run"]["run"] != good_run
