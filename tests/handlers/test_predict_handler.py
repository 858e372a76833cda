"""The predict function: HTTP API (payload 2.0) events -> endpoint invocations -> labelled answers.

The table is moto's, arranged as the format and deploy functions leave it; the endpoint's answers
are scripted with Stubber on the function's sagemaker-runtime client, so each test states exactly
which k-NN request it expects (or, for request errors, that none is sent).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dropfit.records import Run, RunStatus

from tests.conftest import load_function

from .support import (
    ENDPOINT,
    IRIS_CLASSES,
    IRIS_FEATURES,
    METRICS,
    NEW,
    NEW_AT,
    OLD,
    OLD_AT,
    PREFIX,
    Function,
    HttpAnswer,
    RuntimeScript,
    Stack,
    get_event,
    http_answer,
    predict_event,
    serve_in_moto,
)

# Error answers add no metric; Powertools warns about the empty flush, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TWO_FLOWERS_CSV = b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
TWO_ANSWERS = {"predictions": [{"predicted_label": 0.0}, {"predicted_label": 2.0}]}


@pytest.fixture
def runtime(predict_function: Function) -> Iterator[RuntimeScript]:
    with RuntimeScript(predict_function.module.service.runtime.client) as script:
        yield script


def _call(function: Function, event: dict[str, Any]) -> HttpAnswer:
    return http_answer(function(event))


# --------------------------------------------------------------------------- predictions

SAME_TWO_FLOWERS = {
    "json lists": ("application/json", '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3, 5.2, 2.3]]}'),
    "json objects in any key order": (
        "application/json",
        json.dumps(
            {
                "instances": [
                    {
                        "Petal.Width": 0.2,
                        "Sepal.Length": 5.1,
                        "Petal.Length": 1.4,
                        "Sepal.Width": 3.5,
                    },
                    {
                        "Sepal.Length": 6.7,
                        "Sepal.Width": 3.0,
                        "Petal.Length": 5.2,
                        "Petal.Width": 2.3,
                    },
                ]
            }
        ),
    ),
    "json with charset": (
        "application/json; charset=utf-8",
        '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}',
    ),
    "no content type (json)": (None, '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'),
    "csv without header": ("text/csv", "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"),
    "csv with header in another order": (
        "text/csv",
        "Petal.Width,Sepal.Length,Sepal.Width,Petal.Length\r\n0.2,5.1,3.5,1.4\r\n2.3,6.7,3.0,5.2",
    ),
}


@pytest.mark.parametrize("request_body", SAME_TWO_FLOWERS.values(), ids=SAME_TWO_FLOWERS.keys())
def test_instances_are_sent_as_training_order_csv_and_answered_with_class_names(
    predict_function: Function,
    runtime: RuntimeScript,
    deployed: Run,
    request_body: tuple[str | None, str],
) -> None:
    content_type, body = request_body
    runtime.answers(TWO_FLOWERS_CSV, TWO_ANSWERS, variant=OLD)

    answer = _call(predict_function, predict_event(body=body, content_type=content_type))

    runtime.assert_done()
    assert answer.status == 200
    assert answer.body == {
        "model": "iris",
        "run": OLD,
        "predictor_type": "classifier",
        "count": 2,
        "predictions": [{"label": "setosa"}, {"label": "virginica"}],
    }


def test_base64_encoded_body_is_decoded(
    predict_function: Function,
    runtime: RuntimeScript,
    deployed: Run,
) -> None:
    event = predict_event(body="", content_type="text/csv")
    event["body"] = base64.b64encode(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n").decode()
    event["isBase64Encoded"] = True
    runtime.answers(TWO_FLOWERS_CSV, TWO_ANSWERS, variant=OLD)

    answer = _call(predict_function, event)

    runtime.assert_done()
    assert (answer.status, answer.body["count"]) == (200, 2)


NEIGHBOR_DISTANCES = {
    "labelled neighbours": ("5.9,3.0,4.2,1.5", [0.1, 0.22, 0.3], [0.1, 0.22, 0.3]),
    # 1e20 is a valid feature value, but its squared distance overflows the k-NN's float32
    "distances beyond float32 are null": ("1e+20,3.0,4.2,1.5", [math.inf] * 3, [None] * 3),
}


@pytest.mark.parametrize("case", NEIGHBOR_DISTANCES.values(), ids=NEIGHBOR_DISTANCES.keys())
def test_neighbors_query_asks_for_the_verbose_answer_and_labels_the_neighbors(
    predict_function: Function,
    runtime: RuntimeScript,
    deployed: Run,
    case: tuple[str, list[float], list[float | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(predict_function.module.service, "allow_neighbors", True)
    row, distances, shown = case
    verbose = {
        "predictions": [{"predicted_label": 1.0, "labels": [1.0, 1.0, 2.0], "distances": distances}]
    }
    runtime.answers(row.encode(), verbose, variant=OLD, verbose=True)
    event = predict_event(body=f'{{"instances": [[{row}]]}}', query={"neighbors": "true"})

    answer = _call(predict_function, event)

    runtime.assert_done()
    assert answer.status == 200
    assert json.loads(answer.raw, parse_constant=pytest.fail) == answer.body  # no NaN, Infinity
    assert answer.body["predictions"] == [
        {
            "label": "versicolor",
            "neighbors": [
                {"label": label, "distance": distance}
                for label, distance in zip(
                    ["versicolor", "versicolor", "virginica"], shown, strict=True
                )
            ],
        }
    ]


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_neighbors_are_refused_unless_the_stack_allows_them(
    predict_function: Function, runtime: RuntimeScript, deployed: Run, value: str
) -> None:
    event = predict_event(body='{"instances": [[5.1, 3.5, 1.4, 0.2]]}', query={"neighbors": value})

    answer = _call(predict_function, event)

    runtime.assert_done()  # the endpoint is never asked
    assert answer.status == 403
    assert answer.body["error"]["code"] == "NeighborsDisabled"
    assert "AllowNeighbors=true" in answer.body["error"]["message"]
    assert "without ?neighbors=true" in answer.body["error"]["message"]


def test_the_stack_parameter_turns_neighbors_on(
    load: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load("predict").service.allow_neighbors is False  # events/env.json: the default
    monkeypatch.setenv("ALLOW_NEIGHBORS", "true")
    assert load_function("predict").service.allow_neighbors is True


@pytest.mark.parametrize(
    "answered_by", [(OLD, "virginica"), (NEW, "versicolor")], ids=["old run", "new run"]
)
def test_during_an_update_labels_come_from_the_run_whose_variant_answered(
    stack: Stack,
    predict_function: Function,
    runtime: RuntimeScript,
    deployed: Run,
    answered_by: tuple[str, str],
) -> None:
    variant, label = answered_by
    # The new upload has a fourth class, sorted first: class index 2 means another flower.
    new = stack.seed_run(
        NEW, RunStatus.DEPLOYING, created_at=NEW_AT, classes=["hybrid", *IRIS_CLASSES]
    )
    stack.seed_model(desired=new, deploying=NEW, deployed=OLD)
    runtime.answers(b"6.7,3.0,5.2,2.3", {"predictions": [{"predicted_label": 2.0}]}, variant)

    answer = _call(predict_function, predict_event(body='{"instances": [[6.7, 3.0, 5.2, 2.3]]}'))

    runtime.assert_done()
    assert answer.status == 200
    assert (answer.body["run"], answer.body["predictions"]) == (variant, [{"label": label}])


class Reads:
    """The predict function's reads as botocore sends them: DynamoDB items (GetItem, by their
    ``pk``) and S3 objects (GetObject: a run's metadata.json, as ``metadata <run>``)."""

    def __init__(self, function: Function) -> None:
        self.keys: list[str] = []
        table = function.module.service.table.client
        table.meta.events.register("provide-client-params.dynamodb.GetItem", self._item)
        s3 = function.module.service.metadata.storage.client
        s3.meta.events.register("provide-client-params.s3.GetObject", self._object)

    def _item(self, params: dict[str, Any], **_: Any) -> None:
        self.keys.append(params["Key"]["pk"]["S"])

    def _object(self, params: dict[str, Any], **_: Any) -> None:
        self.keys.append(f"metadata {params['Key'].split('/')[-2]}")

    def take(self) -> list[str]:
        taken, self.keys = self.keys, []
        return taken


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ONE_FLOWER = '{"instances": [[6.7, 3.0, 5.2, 2.3]]}'
ONE_ANSWER = {"predictions": [{"predicted_label": 2.0}]}


def test_a_warm_container_reads_the_model_record_once_per_ttl(
    stack: Stack, predict_function: Function, runtime: RuntimeScript, deployed: Run
) -> None:
    from dropfit.serving import MODEL_RECORD_TTL_SECONDS

    clock, reads = Clock(), Reads(predict_function)
    predict_function.module.service.clock = clock
    for _ in range(3):
        runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, OLD)

    first = _call(predict_function, predict_event(body=ONE_FLOWER))
    assert reads.take() == ["MODEL", f"metadata {OLD}"]
    clock.now += MODEL_RECORD_TTL_SECONDS - 0.01
    second = _call(predict_function, predict_event(body=ONE_FLOWER))
    assert reads.take() == []  # the model record and the run both come from the cache
    clock.now += 0.01
    third = _call(predict_function, predict_event(body=ONE_FLOWER))
    assert reads.take() == ["MODEL"]  # a run never changes; the record is read again

    runtime.assert_done()
    assert [a.status for a in (first, second, third)] == [200, 200, 200]


def _redeployed_with_a_fifth_feature(
    stack: Stack, function: Function, runtime: RuntimeScript
) -> Reads:
    """OLD answers once (its record is cached, and never expires by age); then a new upload
    with a fifth feature is deployed as NEW. The reads so far are taken."""
    reads = Reads(function)
    function.module.service.clock = Clock()
    runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, OLD)
    assert _call(function, predict_event(body=ONE_FLOWER)).status == 200
    features = [*IRIS_FEATURES, "Stem.Length"]
    new = stack.seed_run(NEW, RunStatus.DEPLOYED, created_at=NEW_AT, features=features)
    stack.seed_model(desired=new, deployed=NEW)
    reads.take()
    return reads


def test_a_new_deployment_is_seen_as_soon_as_its_variant_answers(
    stack: Stack, predict_function: Function, runtime: RuntimeScript, deployed: Run
) -> None:
    reads = _redeployed_with_a_fifth_feature(stack, predict_function, runtime)
    runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, NEW)  # (the endpoint's new variant)
    runtime.answers(b"6.7,3.0,5.2,2.3,9.0", ONE_ANSWER, NEW)

    answered_by_new = _call(predict_function, predict_event(body=ONE_FLOWER))
    assert reads.take() == [f"metadata {NEW}"]  # NEW's label map; the record was cached
    five_features = _call(
        predict_function, predict_event(body='{"instances": [[6.7, 3.0, 5.2, 2.3, 9.0]]}')
    )

    runtime.assert_done()
    assert reads.take() == ["MODEL"]
    assert (answered_by_new.status, answered_by_new.body["run"]) == (200, NEW)
    assert (five_features.status, five_features.body["run"]) == (200, NEW)


def test_a_request_for_the_new_features_is_judged_by_the_current_record(
    stack: Stack, predict_function: Function, runtime: RuntimeScript, deployed: Run
) -> None:
    reads = _redeployed_with_a_fifth_feature(stack, predict_function, runtime)
    runtime.answers(b"6.7,3.0,5.2,2.3,9.0", ONE_ANSWER, NEW)

    # The cached record still names OLD (4 features); the request is right for NEW.
    answer = _call(
        predict_function, predict_event(body='{"instances": [[6.7, 3.0, 5.2, 2.3, 9.0]]}')
    )
    four_features = _call(predict_function, predict_event(body=ONE_FLOWER))

    runtime.assert_done()
    # NEW's record and run are read once; a refusal is confirmed on a fresh record (one read)
    assert reads.take() == ["MODEL", f"metadata {NEW}", "MODEL"]
    assert (answer.status, answer.body["run"]) == (200, NEW)
    assert four_features.status == 422
    assert "expects 5" in four_features.body["error"]["message"]


def test_an_endpoint_error_drops_the_cached_model_record(
    stack: Stack, predict_function: Function, runtime: RuntimeScript, deployed: Run
) -> None:
    reads = Reads(predict_function)
    predict_function.module.service.clock = Clock()
    runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, OLD)
    runtime.fails("ValidationError", f"Endpoint {ENDPOINT} of account 123 not found.", 400)
    runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, OLD)

    statuses = [_call(predict_function, predict_event(body=ONE_FLOWER)).status for _ in range(2)]
    # the error came with a cached record: read afresh (and cached), to tell a deleted model apart
    assert reads.take() == ["MODEL", f"metadata {OLD}", "MODEL"]
    assert _call(predict_function, predict_event(body=ONE_FLOWER)).status == 200

    runtime.assert_done()
    assert statuses == [200, 503]
    assert reads.take() == []


def test_a_model_deleted_while_its_record_is_cached_is_said_deleted_at_once(
    stack: Stack, predict_function: Function, runtime: RuntimeScript, deployed: Run
) -> None:
    """Its endpoint is gone before the cached record expires: the answer is the deletion (404),
    not "no endpoint is serving yet, retry"."""
    predict_function.module.service.clock = Clock()
    runtime.answers(b"6.7,3.0,5.2,2.3", ONE_ANSWER, OLD)
    runtime.fails("ValidationError", f"Endpoint {ENDPOINT} of account 123 not found.", 400)
    assert _call(predict_function, predict_event(body=ONE_FLOWER)).status == 200
    stack.runs.mark_deleted("iris")

    answer = _call(predict_function, predict_event(body=ONE_FLOWER))

    runtime.assert_done()
    assert (answer.status, answer.body["error"]["code"]) == (404, "ModelNotFound")
    assert "was deleted" in answer.body["error"]["message"]


def test_first_deployment_in_progress_answers_from_the_deploying_run(
    stack: Stack,
    predict_function: Function,
    runtime: RuntimeScript,
) -> None:
    old = stack.seed_run(OLD, RunStatus.DEPLOYING, created_at=OLD_AT)
    stack.seed_model(desired=old, deploying=OLD)
    runtime.answers(TWO_FLOWERS_CSV, TWO_ANSWERS, variant=OLD)

    answer = _call(
        predict_function,
        predict_event(body='{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'),
    )

    runtime.assert_done()
    assert (answer.status, answer.body["run"]) == (200, OLD)


def test_regressor_answers_numbers(
    stack: Stack,
    predict_function: Function,
    runtime: RuntimeScript,
) -> None:
    job = f"{PREFIX}-houses-0a0a0a0a0a0a"
    run = stack.seed_run(
        job,
        RunStatus.DEPLOYED,
        created_at=OLD_AT,
        model="houses",
        features=["rooms", "age"],
        predictor_type="regressor",
    )
    stack.seed_model("houses", desired=run, deployed=job)
    runtime.answers(
        b"3.0,12.0", {"predictions": [{"predicted_label": 231.5}]}, job, endpoint=f"{PREFIX}-houses"
    )

    answer = _call(
        predict_function, predict_event("houses", '{"instances": [{"rooms": 3, "age": 12}]}')
    )

    runtime.assert_done()
    assert answer.status == 200
    assert answer.body == {
        "model": "houses",
        "run": job,
        "predictor_type": "regressor",
        "count": 1,
        "predictions": [{"label": 231.5}],
    }


# A run fitted with scale=standard, encode=onehot, missing=median (its metadata.json).
FITTED = {
    "scale": {"method": "standard", "chosen_by": "option"},
    "encode": {"method": "onehot"},
    "missing": {"method": "median", "rows_dropped": 0, "values_filled": 2},
    "columns": [
        {"name": "rooms", "kind": "number", "offset": 4.0, "divisor": 2.0, "median": 3.0},
        {"name": "town", "kind": "category", "categories": ["north", "south"]},
    ],
}


def _seed_fitted(stack: Stack) -> str:
    job = f"{PREFIX}-homes-0b0b0b0b0b0b"
    run = stack.seed_run(
        job,
        RunStatus.DEPLOYED,
        created_at=OLD_AT,
        model="homes",
        features=["rooms", "town"],
        predictor_type="regressor",
        preprocessing=FITTED,
    )
    stack.seed_model("homes", desired=run, deployed=job)
    return job


def test_a_fitted_run_gets_raw_values_transformed_and_only_its_variant_answers(
    stack: Stack, predict_function: Function, runtime: RuntimeScript
) -> None:
    job = _seed_fitted(stack)
    # rooms 8 -> (8 - 4) / 2; rooms missing -> median 3 -> -0.5; town one-hot, "west" unseen;
    # as the channels write them (dropfit.preprocessing.float32_text): -0.5 is -5e-01
    runtime.answers(
        b"2.0,0.0,1.0\n-5e-01,0.0,0.0",
        {"predictions": [{"predicted_label": 310.0}, {"predicted_label": 150.0}]},
        job,
        endpoint=f"{PREFIX}-homes",
        target=job,
    )
    body = {"instances": [{"rooms": 8, "town": "south"}, {"rooms": None, "town": "west"}]}

    answer = _call(predict_function, predict_event("homes", json.dumps(body)))

    runtime.assert_done()
    assert answer.status == 200, answer.body
    assert answer.body["predictions"] == [
        {"label": 310.0},
        {"label": 150.0, "unseen_categories": {"town": "west"}, "imputed": ["rooms"]},
    ]


def test_a_fitted_run_whose_variant_no_longer_serves_is_not_answered_by_another(
    stack: Stack, predict_function: Function, runtime: RuntimeScript
) -> None:
    job = _seed_fitted(stack)
    gone = f"Variant {job} not found for endpoint {PREFIX}-homes."
    runtime.fails("ValidationError", gone, 400)
    runtime.fails("ValidationError", gone, 400)  # the record, read again, still names it

    answer = _call(
        predict_function, predict_event("homes", '{"instances": [{"rooms": 8, "town": "south"}]}')
    )

    runtime.assert_done()
    assert answer.status == 503
    assert answer.body["error"]["code"] == "ModelNotReady"
    assert answer.headers["Retry-After"] == "1"


# --------------------------------------------------------------------------- request errors


@dataclass(frozen=True)
class Refused:
    content_type: str
    body: str
    status: int
    code: str
    message: str


FEATURES = ", ".join(IRIS_FEATURES)
BAD_REQUESTS = {
    "invalid json": Refused(
        "application/json",
        '{"instances": [[5.1, 3.5,',
        400,
        "BadRequest",
        "The body is not valid JSON: Expecting value: line 1 column 26 (char 25).",
    ),
    "json not an object": Refused(
        "application/json",
        "[[5.1, 3.5, 1.4, 0.2]]",
        400,
        "BadRequest",
        'The body must be a JSON object {"instances": [...]}.',
    ),
    "instances not a list": Refused(
        "application/json",
        '{"instances": {"Sepal.Length": 5.1}}',
        400,
        "BadRequest",
        '"instances" must be a list of instances.',
    ),
    "wrong content type": Refused(
        "text/plain",
        "5.1,3.5,1.4,0.2",
        415,
        "UnsupportedMediaType",
        "Content type 'text/plain' is not supported; send application/json or text/csv.",
    ),
    "no instances": Refused(
        "application/json",
        '{"instances": []}',
        422,
        "InvalidInstances",
        "No instances to predict; send at least one.",
    ),
    "wrong count": Refused(
        "application/json",
        '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2]]}',
        422,
        "InvalidInstances",
        f"instances[1] has 3 values; the model expects 4: {FEATURES}.",
    ),
    "unknown and missing feature names": Refused(
        "application/json",
        '{"instances": [{"Sepal.Length": 5.1, "Sepal.Width": 3.5, "Petal.Length": 1.4, '
        '"petal_width": 0.2}]}',
        422,
        "InvalidInstances",
        f"instances[0] has missing Petal.Width; unknown petal_width; the features are {FEATURES}.",
    ),
    "non-number": Refused(
        "application/json",
        '{"instances": [[5.1, "3.5", 1.4, 0.2]]}',
        422,
        "InvalidInstances",
        'instances[0][1] must be a number, got "3.5".',
    ),
    "null": Refused(
        "application/json",
        '{"instances": [{"Sepal.Length": 5.1, "Sepal.Width": null, "Petal.Length": 1.4, '
        '"Petal.Width": 0.2}]}',
        422,
        "InvalidInstances",
        "instances[0].Sepal.Width must be a number, got null.",
    ),
    "boolean": Refused(
        "application/json",
        '{"instances": [[true, 3.5, 1.4, 0.2]]}',
        422,
        "InvalidInstances",
        "instances[0][0] must be a number, got true.",
    ),
    "NaN literal": Refused(
        "application/json",
        '{"instances": [[NaN, 3.5, 1.4, 0.2]]}',
        422,
        "InvalidInstances",
        "NaN is not a finite number; send finite feature values.",
    ),
    "Infinity literal": Refused(
        "application/json",
        '{"instances": [[5.1, -Infinity, 1.4, 0.2]]}',
        422,
        "InvalidInstances",
        "-Infinity is not a finite number; send finite feature values.",
    ),
    "number too large for a float": Refused(
        "application/json",
        '{"instances": [[1e999, 3.5, 1.4, 0.2]]}',
        422,
        "InvalidInstances",
        "instances[0][0] must be a finite number, got inf.",
    ),
    "csv wrong count": Refused(
        "text/csv",
        "5.1,3.5,1.4,0.2\n6.7,3.0,5.2\n",
        422,
        "InvalidInstances",
        f"CSV row 2 has 3 values; the model expects 4: {FEATURES}.",
    ),
    "csv non-number": Refused(
        "text/csv",
        "5.1,three,1.4,0.2",
        422,
        "InvalidInstances",
        "CSV row 1, column 'Sepal.Width': 'three' is not a finite decimal number.",
    ),
    "csv non-number after a reordering header": Refused(
        "text/csv",
        "Petal.Width,Sepal.Length,Sepal.Width,Petal.Length\n0.2,5.1,three,1.4",
        422,
        "InvalidInstances",
        "CSV row 1, column 'Sepal.Width': 'three' is not a finite decimal number.",
    ),
    "csv nan": Refused(
        "text/csv",
        "5.1,3.5,nan,0.2",
        422,
        "InvalidInstances",
        "CSV row 1, column 'Petal.Length': 'nan' is not a finite decimal number.",
    ),
    "csv number too large for a float": Refused(
        "text/csv",
        "5.1,3.5,1.4,1e999",
        422,
        "InvalidInstances",
        "CSV row 1, column 'Petal.Width' must be a finite number.",
    ),
    "too many instances": Refused(
        "application/json",
        json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 10_001}),
        413,
        "PayloadTooLarge",
        "10001 instances in one request; at most 10000 are accepted.",
    ),
}


@pytest.mark.parametrize("refused", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_is_answered_with_its_status_and_message_without_invoking_the_endpoint(
    predict_function: Function, runtime: RuntimeScript, deployed: Run, refused: Refused
) -> None:
    event = predict_event(body=refused.body, content_type=refused.content_type)

    # Nothing is scripted: an endpoint call would fail the request with a 500.
    answer = _call(predict_function, event)

    assert answer.status == refused.status
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body == {"error": {"code": refused.code, "message": refused.message}}


def test_instances_over_the_endpoints_4_mb_limit_are_refused(
    stack: Stack,
    predict_function: Function,
    runtime: RuntimeScript,
) -> None:
    features = [f"f{i}" for i in range(100)]
    run = stack.seed_run(OLD, RunStatus.DEPLOYED, created_at=OLD_AT, features=features)
    stack.seed_model(desired=run, deployed=OLD)
    row = ",".join(["0.3333333333333333"] * 100)
    body = "\n".join([row] * 2300)  # 2300 rows of 1899 bytes: 4.37 MB for the endpoint

    answer = _call(predict_function, predict_event(body=body, content_type="text/csv"))

    assert answer.status == 413
    assert answer.body == {
        "error": {
            "code": "PayloadTooLarge",
            "message": "The instances make a 4369999 byte request; the endpoint accepts at most "
            "4194304 bytes. Split them into smaller requests.",
        }
    }


# --------------------------------------------------------------------------- model and route errors


@pytest.mark.parametrize(
    "event",
    [predict_event("wine"), get_event("/models/wine")],
    ids=["predict", "describe"],
)
def test_unknown_model_is_404_with_how_to_create_it(
    stack: Stack,
    predict_function: Function,
    deployed: Run,
    event: dict[str, Any],
) -> None:
    answer = _call(predict_function, event)

    assert answer.status == 404
    assert answer.body == {
        "error": {
            "code": "ModelNotFound",
            "message": "No model named 'wine'. Upload incoming/wine.csv to create it.",
        }
    }


def test_a_long_model_name_is_not_echoed_in_full(stack: Stack, predict_function: Function) -> None:
    answer = _call(predict_function, predict_event("x" * 5_000))

    # The naming rule cuts it to 32 characters (23 of its own, "-" and 8 hex digits).
    assert answer.status == 404
    message = answer.body["error"]["message"]
    name = r"x{23}-[0-9a-f]{8}"
    assert re.fullmatch(
        rf"No model named '{name}'\. Upload incoming/{name}\.csv to create it\.", message
    ), message


def test_a_model_name_without_letters_or_digits_is_400(
    stack: Stack, predict_function: Function
) -> None:
    answer = _call(predict_function, predict_event("-_-"))

    assert answer.status == 400
    assert answer.body == {
        "error": {
            "code": "InvalidModelName",
            "message": "Invalid model name: a model name has at least one letter or digit "
            "(see GET /models).",
        }
    }


def test_unknown_route_is_404_naming_the_routes(stack: Stack, predict_function: Function) -> None:
    answer = _call(predict_function, get_event("/models/iris/runs/latest"))

    assert answer.status == 404
    assert answer.body == {
        "error": {
            "code": "NotFound",
            "message": "No such route; see GET /models and POST /models/{model}/predict.",
        }
    }


@pytest.mark.parametrize(
    "latest",
    [
        (RunStatus.TRAINING, None, "TRAINING"),
        (
            RunStatus.FAILED,
            "Option k=0 is out of range; expected 1..1024.",
            "FAILED: Option k=0 is out of range; expected 1..1024.",
        ),
        (
            RunStatus.FAILED,
            "Training job failed: ClientError: Data download failed: could not read "
            "s3://dropfit-data-123456789012/datasets/iris/x/train/ with role "
            "arn:aws:iam::123456789012:role/dropfit-SageMakerRole-1AB (image "
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/knn:1, account 123456789012).",
            "FAILED: Training job failed: ClientError: Data download failed: could not read "
            "datasets/iris/x/train/ with role (ARN) (image (container image), account "
            "(account id)).",
        ),
    ],
    ids=["training", "failed", "sagemaker-internals-redacted"],
)
def test_model_without_a_serving_run_is_503_with_retry_after_and_its_latest_state(
    stack: Stack,
    predict_function: Function,
    runtime: RuntimeScript,
    latest: tuple[RunStatus, str | None, str],
) -> None:
    status, reason, shown = latest
    stack.seed_run(OLD, status, created_at=OLD_AT, reason=reason)

    answer = _call(predict_function, predict_event())

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "30"
    assert answer.body == {
        "error": {
            "code": "ModelNotReady",
            "message": f"Model 'iris' has no endpoint in service yet (latest run: {shown}).",
        }
    }


@dataclass(frozen=True)
class EndpointFailure:
    code: str  # what sagemaker-runtime raises
    message: str
    http_status: int
    fields: dict[str, Any] | None
    status: int  # what the API answers
    retry_after: str | None
    error: dict[str, str]


ENDPOINT_ERRORS = {
    "model not ready": EndpointFailure(
        "ModelNotReadyException",
        "Model is not ready yet.",
        429,
        None,
        503,
        "5",
        {"code": "ModelNotReady", "message": "The endpoint is starting; retry shortly."},
    ),
    "endpoint not found": EndpointFailure(
        "ValidationError",
        f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        400,
        None,
        503,
        "30",
        {
            "code": "ModelNotReady",
            "message": f"No endpoint is serving yet ({ENDPOINT} is not in service).",
        },
    ),
    "model error": EndpointFailure(
        "ModelError",
        "Received client error (400) from primary with message ...",
        424,
        {"OriginalStatusCode": 400, "OriginalMessage": "unable to evaluate payload provided"},
        502,
        None,
        {
            "code": "ModelError",
            "message": "The model could not answer: unable to evaluate payload provided",
        },
    ),
    "throttled": EndpointFailure(
        "ThrottlingException",
        "Rate exceeded",
        400,
        None,
        429,
        "1",
        {
            "code": "Throttled",
            "message": "The endpoint is at its concurrency limit; retry shortly.",
        },
    ),
}


@pytest.mark.parametrize("failure", ENDPOINT_ERRORS.values(), ids=ENDPOINT_ERRORS.keys())
def test_endpoint_errors_keep_their_http_meaning(
    predict_function: Function, runtime: RuntimeScript, deployed: Run, failure: EndpointFailure
) -> None:
    runtime.fails(failure.code, failure.message, failure.http_status, failure.fields)

    answer = _call(predict_function, predict_event())

    runtime.assert_done()
    assert answer.status == failure.status
    assert answer.headers.get("Retry-After") == failure.retry_after
    assert answer.body == {"error": failure.error}


SECRET = "arn:aws:iam::123456789012:role/internal-secret-role"


@pytest.mark.parametrize(
    "break_endpoint",
    [
        lambda runtime: runtime.fails("InternalFailure", f"boom in {SECRET}", 500),
        lambda runtime: runtime.answers(
            b"5.1,3.5,1.4,0.2", {"predictions": [{"predicted_label": 7.0}]}, variant=OLD
        ),
        lambda runtime: runtime.answers(b"5.1,3.5,1.4,0.2", {"answers": SECRET}, variant=OLD),
    ],
    ids=["unexpected service error", "label outside the label map", "malformed answer"],
)
def test_unexpected_failure_is_a_500_that_leaks_nothing(
    predict_function: Function,
    runtime: RuntimeScript,
    deployed: Run,
    break_endpoint: Callable[[RuntimeScript], None],
) -> None:
    break_endpoint(runtime)

    answer = _call(predict_function, predict_event())

    runtime.assert_done()
    assert answer.status == 500
    assert answer.body == {
        "error": {
            "code": "InternalError",
            "message": f"Internal error (request id {predict_function.context.aws_request_id}).",
        }
    }
    for leak in ("Traceback", SECRET, "boom", "predicted_label", "KeyError", "ValueError"):
        assert leak not in answer.raw


# --------------------------------------------------------------------------- listing and describing


def test_list_models_shows_every_model_and_what_it_serves(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    wine = f"{PREFIX}-wine-0c0c0c0c0c0c"
    stack.seed_run(wine, RunStatus.TRAINING, created_at=NEW_AT, model="wine")

    answer = _call(predict_function, get_event("/models"))

    assert answer.status == 200
    iris, wine_model = stack.model("iris"), stack.model("wine")
    assert answer.body == {
        "models": [
            {
                "model": "iris",
                "endpoint": ENDPOINT,
                "latest_run": OLD,
                "deployed_run": OLD,
                "updated_at": iris.updated_at,
            },
            {
                "model": "wine",
                "endpoint": f"{PREFIX}-wine",
                "latest_run": wine,
                "deployed_run": None,
                "updated_at": wine_model.updated_at,
            },
        ]
    }


def test_list_models_is_empty_before_any_upload(stack: Stack, predict_function: Function) -> None:
    answer = _call(predict_function, get_event("/models"))

    assert (answer.status, answer.body) == (200, {"models": []})


def test_describe_model_shows_the_serving_run_and_the_latest_runs_failure(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)
    reason = (
        "Label column 'Species' has only one class ('setosa'); a classifier needs at least 2 "
        "classes."
    )
    stack.seed_run(NEW, RunStatus.FAILED, created_at=NEW_AT, reason=reason, classes=["setosa"])

    answer = _call(predict_function, get_event("/models/iris"))

    assert answer.status == 200
    body = answer.body
    assert body["model"] == "iris"
    assert body["status"] == "ready"
    assert body["endpoint"] == {"name": ENDPOINT, "status": "InService", "failure_reason": None}
    assert (body["features"], body["classes"]) == (IRIS_FEATURES, IRIS_CLASSES)
    assert (body["predictor_type"], body["metrics"]) == ("classifier", METRICS)
    assert (body["deployed_run"]["run"], body["deployed_run"]["status"]) == (OLD, "DEPLOYED")
    latest = body["latest_run"]
    assert (latest["run"], latest["status"], latest["reason"]) == (NEW, "FAILED", reason)


def test_describe_model_shows_sagemakers_failure_reasons_without_internals(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    # moto has no failed endpoints: make its one fail as SageMaker reports it
    endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID][stack.region].endpoints[ENDPOINT]
    endpoint.endpoint_status = "Failed"
    endpoint.failure_reason = (
        "Failed to download model data from s3://dropfit-data-123456789012/models/iris/"
        f"model.tar.gz for arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}."
    )
    stack.seed_run(
        NEW,
        RunStatus.FAILED,
        created_at=NEW_AT,
        reason=f"Deployment failed: {endpoint.failure_reason}",
    )

    answer = _call(predict_function, get_event("/models/iris"))

    shown = "Failed to download model data from models/iris/model.tar.gz for (ARN)."
    assert answer.body["endpoint"]["failure_reason"] == shown
    assert answer.body["latest_run"]["reason"] == f"Deployment failed: {shown}"
    assert "123456789012" not in json.dumps(answer.body)


def test_describe_model_shows_a_refused_uploads_reason_as_every_reason(
    stack: Stack, predict_function: Function
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)
    reason = f"s3://{stack.bucket}/incoming/IRIS.csv maps to iris; " + "x" * 10_000
    stack.runs.note_refused_upload("iris", "IRIS.csv", reason)

    answer = _call(predict_function, get_event("/models/iris"))

    shown = answer.body["refused_upload"]["reason"]
    assert shown.startswith("incoming/IRIS.csv maps to iris; xxx")
    assert shown.endswith(" more characters)")
    assert stack.bucket not in json.dumps(answer.body)


def test_describe_model_while_training_shows_no_endpoint_yet(
    stack: Stack, predict_function: Function
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)

    answer = _call(predict_function, get_event("/models/iris"))

    assert answer.status == 200
    body = answer.body
    assert body["status"] == "training"
    assert body["endpoint"] == {"name": ENDPOINT, "status": "NotCreated", "failure_reason": None}
    assert (body["features"], body["classes"]) == (IRIS_FEATURES, IRIS_CLASSES)
    assert (body["metrics"], body["deployed_run"]) == (None, None)
    assert (body["latest_run"]["run"], body["latest_run"]["status"]) == (OLD, "TRAINING")


# --------------------------------------------------------------------------- reports


def _with_report(stack: Stack, run: Run, report: dict[str, Any]) -> None:
    """What the report function leaves: report.json and .html, and their keys on the run."""
    base = f"reports/iris/{run.job}/"
    stack.s3.put_object(Bucket=stack.bucket, Key=f"{base}report.json", Body=json.dumps(report))
    stack.s3.put_object(
        Bucket=stack.bucket, Key=f"{base}report.html", Body=b"<html>", ContentType="text/html"
    )
    report_keys = {"json": f"{base}report.json", "html": f"{base}report.html"}
    stack.runs.update_run("iris", run.job, report=report_keys)


def test_describe_model_links_the_serving_runs_report_with_a_short_lived_url(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)
    _with_report(stack, deployed, {"model": "iris"})

    answer = _call(predict_function, get_event("/models/iris"))

    link = answer.body["report"]
    assert (link["run"], link["json"], link["expires_in"]) == (OLD, "/models/iris/report", 900)
    url = urlsplit(link["html_url"])
    query = parse_qs(url.query)
    assert url.netloc == f"{stack.bucket}.s3.{stack.region}.amazonaws.com"  # regional, no redirect
    assert url.path == f"/reports/iris/{OLD}/report.html"
    assert query["X-Amz-Expires"] == ["900"]
    assert "X-Amz-Signature" in query
    assert "report" not in answer.body["deployed_run"]  # the run's S3 keys stay internal


def test_describe_model_has_no_report_link_before_the_report_is_written(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)

    answer = _call(predict_function, get_event("/models/iris"))

    assert (answer.status, answer.body["report"]) == (200, None)


def test_get_report_answers_the_serving_runs_report_json(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)
    report = {"model": "iris", "run": OLD, "metrics": {"accuracy": 0.9736842105263158}}
    _with_report(stack, deployed, report)

    answer = _call(predict_function, get_event("/models/iris/report"))

    assert (answer.status, answer.body) == (200, report)


def test_get_report_before_it_is_written_is_404_saying_it_follows_deployment(
    stack: Stack, predict_function: Function, deployed: Run
) -> None:
    serve_in_moto(stack, OLD)

    answer = _call(predict_function, get_event("/models/iris/report"))

    assert answer.status == 404
    assert answer.body["error"]["code"] == "ReportNotFound"
    assert "follows within a minute or two of deployment" in answer.body["error"]["message"]


def test_get_report_of_a_model_without_a_serving_run_is_503(
    stack: Stack, predict_function: Function
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)

    answer = _call(predict_function, get_event("/models/iris/report"))

    assert (answer.status, answer.body["error"]["code"]) == (503, "ModelNotReady")
