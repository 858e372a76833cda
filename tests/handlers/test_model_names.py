"""One model name, one source key: a second key that maps to a taken name is refused, visibly,
and the name's owner keeps its model; a URL names a model by the same rule as a key."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from dropfit.records import RunStatus

from .support import OLD, OLD_AT, Function, Stack, get_event, http_answer

# Error answers add no metric; Powertools warns about the empty flush, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def _upload(
    stack: Stack,
    format_function: Function,
    name: str,
    body: bytes,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    key = f"incoming/{name}"
    result: dict[str, Any] = format_function(
        stack.upload_event(key, stack.put_upload(key, body, metadata))
    )
    return result


def _refusal(model: str, owner: str, refused: str) -> str:
    return (
        f"The model name {model!r} belongs to {owner}; {refused} maps to the same name and was "
        f"not trained ({owner}'s model is unchanged). Upload it again under a file name of its "
        f"own, or choose its model name with the name option (S3 metadata, e.g. "
        f"--metadata name={model}-2)."
    )


@pytest.mark.parametrize(
    "keys",
    [
        ("iris.csv", "IRIS.csv", "iris"),
        ("a/b.csv", "a-b.csv", "a-b"),
        ("Café.csv", "cafe.csv", "cafe"),
        ("x.csv", "x.Csv", "x"),
    ],
)
def test_a_second_key_for_a_taken_name_is_refused_and_the_owner_is_untouched(
    stack: Stack,
    format_function: Function,
    iris_csv: bytes,
    keys: tuple[str, str, str],
) -> None:
    owner, other, model = keys
    first = _upload(stack, format_function, owner, iris_csv)
    before = stack.model(model)
    jobs = stack.training_jobs()
    bucket = stack.bucket_versions()

    second = _upload(stack, format_function, other, iris_csv)

    reason = _refusal(model, owner, other)
    assert second == {"outcome": "rejected", "model": model, "run": None, "reason": reason}
    assert stack.training_jobs() == jobs == [first["run"]]
    after = stack.model(model)
    assert (after.source_key, after.latest_run, after.endpoint, after.updated_at) == (
        f"incoming/{owner}",
        before.latest_run,
        before.endpoint,
        before.updated_at,
    )
    assert after.refused_upload is not None
    assert (after.refused_upload["key"], after.refused_upload["reason"]) == (other, reason)
    runs = [i for i in stack.table_items() if i["pk"]["S"] == f"RUN#{model}"]
    assert [r["sk"]["S"] for r in runs] == [first["run"]]  # no run of the refused key
    assert stack.failure_notices() == [
        {"model": model, "run": "-", "stage": "naming", "reason": reason}
    ]
    assert len(stack.bucket_versions()) == len(bucket) + 1  # the upload itself, unmodified


def test_the_owner_keeps_retraining_after_a_refusal(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    _upload(stack, format_function, "iris.csv", iris_csv)
    _upload(stack, format_function, "IRIS.csv", iris_csv)

    again = _upload(stack, format_function, "iris.csv", iris_csv)

    assert again["outcome"] == "started"
    assert stack.model("iris").latest_run == again["run"]


def test_the_name_option_gives_a_refused_key_a_model_of_its_own(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    _upload(stack, format_function, "iris.csv", iris_csv)

    chosen = _upload(stack, format_function, "IRIS.csv", iris_csv, {"name": "iris-2"})

    assert (chosen["outcome"], chosen["model"]) == ("started", "iris-2")
    run = stack.run("iris-2", chosen["run"])
    assert (run.source["key"], run.options["name"]) == ("incoming/IRIS.csv", "iris-2")
    assert stack.model("iris-2").source_key == "incoming/IRIS.csv"
    assert stack.model("iris").source_key == "incoming/iris.csv"


def test_a_name_option_that_is_no_model_name_is_refused_visibly(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    result = _upload(stack, format_function, "iris.csv", iris_csv, {"name": "Iris 2"})

    reason = (
        "Option name: Invalid model name 'Iris 2': use lower-case letters, digits and single "
        "hyphens, at most 32 characters. For example name=iris-2."
    )
    assert result == {"outcome": "rejected", "model": None, "run": None, "reason": reason}
    assert stack.table_items() == []
    assert stack.training_jobs() == []
    assert stack.failure_notices() == [
        {"model": "-", "run": "-", "stage": "naming", "reason": reason}
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("売上2024.csv", "在庫2024.csv"),
        ("Продажи2024.csv", "Закупки2024.csv"),  # noqa: RUF001 (Cyrillic on purpose)
        (f"{'q' * 40}-first.csv", f"{'q' * 40}-second.csv"),
    ],
)
def test_keys_that_lose_characters_or_are_cut_train_models_of_their_own(
    stack: Stack, format_function: Function, iris_csv: bytes, first: str, second: str
) -> None:
    one = _upload(stack, format_function, first, iris_csv)
    other = _upload(stack, format_function, second, iris_csv)

    assert (one["outcome"], other["outcome"]) == ("started", "started")
    assert one["model"] != other["model"]
    assert stack.failure_notices() == []


def test_a_model_recorded_before_ownership_belongs_to_its_latest_runs_key(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> None:
    stack.seed_run(OLD, RunStatus.DEPLOYED, created_at=OLD_AT)  # incoming/iris.csv, no owner
    assert stack.model("iris").source_key is None

    refused = _upload(stack, format_function, "IRIS.csv", iris_csv)
    owner = _upload(stack, format_function, "iris.csv", iris_csv)

    assert (refused["outcome"], refused["reason"]) == (
        "rejected",
        _refusal("iris", "iris.csv", "IRIS.csv"),
    )
    assert owner["outcome"] == "started"
    assert stack.model("iris").source_key == "incoming/iris.csv"


def test_claims_of_two_keys_agree_on_one_owner(stack: Stack) -> None:
    runs = stack.runs

    assert runs.claim_model("iris", "dropfit-iris", "incoming/iris.csv") is None
    assert runs.claim_model("iris", "dropfit-iris", "incoming/IRIS.csv") == "incoming/iris.csv"
    assert runs.claim_model("iris", "dropfit-iris", "incoming/iris.csv") is None


# --------------------------------------------------------------------------- the API


def test_describe_shows_a_refused_upload_beside_the_owners_runs(
    stack: Stack, format_function: Function, predict_function: Function, iris_csv: bytes
) -> None:
    first = _upload(stack, format_function, "iris.csv", iris_csv)
    _upload(stack, format_function, "IRIS.csv", iris_csv)

    answer = http_answer(predict_function(get_event("/models/iris")))

    assert answer.status == 200
    body = answer.body
    assert (body["status"], body["latest_run"]["run"]) == ("training", first["run"])
    refused = body["refused_upload"]
    assert (refused["key"], refused["reason"]) == (
        "IRIS.csv",
        _refusal("iris", "iris.csv", "IRIS.csv"),
    )


@pytest.mark.parametrize("path", ["IRIS", "Iris", "iris"])
def test_a_url_names_the_model_by_the_naming_rule(
    stack: Stack, predict_function: Function, path: str
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)

    answer = http_answer(predict_function(get_event(f"/models/{path}")))

    assert answer.status == 200
    assert answer.body["model"] == "iris"
    assert answer.body["refused_upload"] is None


def test_a_url_with_a_non_latin_name_finds_its_model(
    stack: Stack, format_function: Function, predict_function: Function, iris_csv: bytes
) -> None:
    model = _upload(stack, format_function, "売上2024.csv", iris_csv)["model"]

    # API Gateway passes the path as sent: percent-encoded
    answer = http_answer(predict_function(get_event(f"/models/{quote('売上2024')}")))

    assert (answer.status, answer.body["model"]) == (200, model)
