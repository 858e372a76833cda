"""Model names on the local stack: one key per name, names that never collide, any case of .csv,
and a URL that names a model by the same rule as a key."""

from __future__ import annotations

import json

import pytest

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

FLOWER = [[5.1, 3.5, 1.4, 0.2]]


def test_a_second_key_for_a_taken_name_is_refused_visibly_and_the_owner_keeps_serving(
    local: Local,
) -> None:
    local.upload("owned.csv", IRIS)
    owner = local.wait_for_new_run("owned")
    assert owner["status"] == "ready", owner
    served = owner["deployed_run"]["run"]

    with local.failure_notices() as notices:
        local.upload("OWNED.csv", IRIS)
        (notice,) = notices.wait_for("OWNED.csv")

    reason = json.loads(json.loads(notice["Body"])["Message"])["reason"]
    assert reason.startswith(
        "The model name 'owned' belongs to owned.csv; OWNED.csv maps to the same name"
    )
    assert "--metadata name=owned-2" in reason
    after = local.describe("owned")
    assert after is not None
    assert after["refused_upload"]["key"] == "OWNED.csv"
    assert (after["deployed_run"]["run"], after["latest_run"]["run"]) == (served, served)
    assert [j["TrainingJobName"] for j in local.training_jobs("-owned-")] == [served]
    answer = local.predict("owned", FLOWER)
    assert (answer.status_code, answer.json()["run"]) == (200, served)


def test_the_name_option_trains_a_refused_key_under_a_name_of_its_own(local: Local) -> None:
    local.upload("chosen.csv", IRIS)
    local.wait_for_new_run("chosen")

    local.s3.put_object(
        Bucket=local.bucket,
        Key=f"{local.incoming}Chosen.csv",
        Body=IRIS,
        Metadata={"name": "chosen-2"},
    )
    chosen = local.wait_for_new_run("chosen-2")

    assert chosen["status"] == "ready", chosen
    assert chosen["latest_run"]["options"]["name"] == "chosen-2"
    assert local.predict("chosen-2", FLOWER).status_code == 200


def test_keys_in_other_scripts_train_models_of_their_own(local: Local) -> None:
    models = []
    for key in ("売上2024.csv", "在庫2024.csv"):
        local.upload(key, IRIS)
        (model,) = local.wait_until(
            f"a model for {key}",
            lambda: [
                m["model"]
                for m in local.client.get("/models", timeout=30).json()["models"]
                if m["model"].startswith("2024-") and m["model"] not in models
            ],
        )
        models.append(model)
        assert local.wait_for_new_run(model)["status"] == "ready"

    assert len(set(models)) == 2
    answer = local.client.get("/models/売上2024", timeout=30)
    assert (answer.status, answer.json()["model"]) == (200, models[0])


def test_an_upload_with_any_case_of_csv_trains(local: Local) -> None:
    local.upload("anycase.cSV", IRIS)

    description = local.wait_for_new_run("anycase")

    assert description["status"] == "ready", description
    assert description["latest_run"]["source"]["key"].endswith("anycase.cSV")


def test_a_url_names_the_model_by_the_naming_rule(local: Local) -> None:
    local.upload("byurl.csv", IRIS)
    local.wait_for_new_run("byurl")

    described = local.client.get("/models/BYURL", timeout=30)
    predicted = local.predict("ByUrl", FLOWER)

    assert (described.status, described.json()["model"]) == (200, "byurl")
    assert (predicted.status_code, predicted.json()["model"]) == (200, "byurl")
