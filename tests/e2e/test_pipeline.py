"""The pipeline end to end: uploads through the S3 API, answers through the HTTP API.

Each test uses its own model name, so the tests do not depend on one another's order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sklearn.metrics import f1_score

from tests.template_utils import load_template

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

TUTORIAL_ACCURACY = 0.9736842105263158  # 37 of 38 test rows, k=1
TUTORIAL_MACRO_F1 = 0.9717034521788341  # scikit-learn's f1_score(average="macro")


def test_settings_routes_and_outputs_come_from_the_template(local: Local) -> None:
    unconditional = {k for k, v in load_template()["Outputs"].items() if "Condition" not in v}
    assert set(local.outputs) >= {*unconditional, "ApiInvokeArn", "AwsEndpointUrl"}
    assert "JwtIssuer" not in local.outputs  # the default ApiAuth is IAM
    assert local.incoming == "incoming/"
    assert local.s3.get_bucket_versioning(Bucket=local.bucket)["Status"] == "Enabled"
    assert local.describe("never-uploaded") is None


def read_test_split(local: Local, run: dict[str, Any]) -> list[tuple[int, list[float]]]:
    # The API shows no S3 locations: the layout comes from the template, as the code's does.
    datasets = load_template()["Mappings"]["Layout"]["Prefix"]["Datasets"]
    key = f"{datasets}{run['model']}/{run['run']}/test/test.csv"
    text = local.s3.get_object(Bucket=local.bucket, Key=key)["Body"].read().decode()
    rows = []
    for line in text.splitlines():
        label, *features = line.split(",")
        rows.append((int(float(label)), [float(value) for value in features]))
    return rows


def test_iris_upload_serves_predictions_with_the_tutorials_accuracy(local: Local) -> None:
    local.upload("iris.csv", IRIS)
    description = local.wait_for_new_run("iris")

    assert description["status"] == "ready", description
    assert description["endpoint"] == {
        "name": f"{local.prefix}-iris",
        "status": "InService",
        "failure_reason": None,
    }
    classes = description["classes"]
    assert classes == ["setosa", "versicolor", "virginica"]
    run = description["deployed_run"]
    rows = read_test_split(local, run)
    assert len(rows) == 38

    response = local.predict("iris", [features for _, features in rows])

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["run"], answer["count"]) == (run["run"], 38)
    truth = [classes[label] for label, _ in rows]
    predicted = [p["label"] for p in answer["predictions"]]
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    assert (correct, correct / len(rows)) == (37, TUTORIAL_ACCURACY)
    assert f1_score(truth, predicted, average="macro") == pytest.approx(TUTORIAL_MACRO_F1)
    assert description["metrics"]["test:accuracy"] == pytest.approx(TUTORIAL_ACCURACY)


def test_a_second_upload_updates_the_endpoint_in_place_and_a_new_file_adds_a_model(
    local: Local,
) -> None:
    local.upload("flowers.csv", IRIS)
    first = local.wait_for_new_run("flowers")
    first_run = first["latest_run"]["run"]
    assert first["status"] == "ready"

    local.upload("flowers.csv", IRIS, metadata={"k": "3"})
    second = local.wait_for_new_run("flowers", previous=first_run)

    second_run = second["latest_run"]["run"]
    assert second_run != first_run
    assert second["deployed_run"]["run"] == second_run
    assert str(second["deployed_run"]["options"]["k"]) == "3"
    assert second["endpoint"]["name"] == first["endpoint"]["name"] == f"{local.prefix}-flowers"
    endpoints = local.sagemaker.list_endpoints(NameContains=f"{local.prefix}-flowers")["Endpoints"]
    assert [e["EndpointName"] for e in endpoints] == [f"{local.prefix}-flowers"]
    answer = local.predict("flowers", [[5.1, 3.5, 1.4, 0.2]]).json()
    assert (answer["run"], answer["predictions"]) == (second_run, [{"label": "setosa"}])

    local.upload("Petal Data.csv", IRIS)
    petals = local.wait_for_new_run("petal-data")

    assert petals["endpoint"]["name"] == f"{local.prefix}-petal-data"
    assert local.predict("petal-data", [[6.3, 3.3, 6.0, 2.5]]).json()["predictions"] == [
        {"label": "virginica"}
    ]
    assert local.predict("flowers", [[5.1, 3.5, 1.4, 0.2]]).json()["run"] == second_run
    listed = {m["model"] for m in json.loads(_get(local, "/models"))["models"]}
    assert {"flowers", "petal-data"} <= listed


def test_a_bad_csv_fails_with_its_reason_and_starts_no_training(local: Local) -> None:
    body = b"a,b,label\n1,2,x\n3,,y\n5,6,x\n7,8,y\n"
    version = local.upload("broken.csv", body)

    description = local.wait_for_new_run("broken")

    run = description["latest_run"]
    assert (description["status"], run["status"]) == ("failed", "FAILED")
    assert "Column 'b' is empty in data row 2" in run["reason"]
    assert local.training_jobs(f"{local.prefix}-broken") == []
    versions = local.s3.list_object_versions(Bucket=local.bucket, Prefix="incoming/broken.csv")
    assert [v["VersionId"] for v in versions["Versions"]] == [version]
    stored = local.s3.get_object(Bucket=local.bucket, Key="incoming/broken.csv")
    assert stored["Body"].read() == body


def test_the_same_s3_event_delivered_twice_starts_one_training_job(local: Local) -> None:
    with local.spy_on_uploads("incoming/dupe.csv") as spy:
        local.upload("dupe.csv", IRIS)
        first = local.wait_for_new_run("dupe")
        (message,) = spy.wait_for("incoming/dupe.csv")
    delivered = "'Object Created' incoming/dupe.csv -> format: attempt 1 ok"
    assert local.log_count(delivered) == 1

    # EventBridge delivers at least once: the identical event, again.
    local.redeliver(message)
    local.wait_until("the second delivery", lambda: local.log_count(delivered) >= 2)

    assert local.log_count(delivered) == 2
    jobs = local.training_jobs(f"{local.prefix}-dupe")
    assert [job["TrainingJobName"] for job in jobs] == [first["latest_run"]["run"]]
    assert local.latest_run("dupe") == first["latest_run"]["run"]


# ---------------------------------------------------------------------------- helpers


def _get(local: Local, path: str) -> str:
    response = local.client.get(path, timeout=30)
    assert response.status == 200, response.text
    return response.text
