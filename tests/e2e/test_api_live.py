"""The HTTP API under attack, live: the in-process attack of tests/security over real HTTP.

The same schemathesis cases (docs/openapi.yaml, valid and invalid) and the same hostile requests
as ``tests/security/test_api_attack.py``, judged the same way, but sent to the running local
stack's API, in front of models deployed from uploads: no 5xx but the documented 503 (with
``Retry-After``), every answer by the spec, every error of the function ``{"error": {code,
message}}``; what API Gateway answers itself (a body over 10 MB) is ``{"message": ...}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.security.api import (
    IRIS_CLASSES,
    SEEDED,
    UNICODE_FEATURES,
    Answer,
    spec,
    spec_violations,
)
from tests.security.test_api_attack import (
    HOSTILE,
    INTERNALS,
    MAX_ERROR_BYTES,
    PREDICT,
    Hostile,
    generated_cases,
    judge,
)

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

IRIS_HEADER = '"Sepal.Length","Sepal.Width","Petal.Length","Petal.Width","Species"'
# The seeded models of the in-process attack, as models of this test's own uploaded here.
MODELS = {"iris": "api-live", "unicode": "api-live-unicode", "numbered": "api-live-numbered"}
EXAMPLES = 100  # per generation mode: ~200 generated requests over HTTP
# Where the live stack answers otherwise than the function in process: the event of this request
# (8 MB of names, escaped as JSON) is over Lambda's 6 MB, so API Gateway refuses it itself.
GATEWAY_413 = {"100000-unknown-names"}
STATUSES: Counter[int] = Counter()


def renamed_iris(features: list[str]) -> bytes:
    text = IRIS.decode()
    assert text.startswith(IRIS_HEADER)
    header = ",".join(f'"{name}"' for name in [*features, "Species"])
    return text.replace(IRIS_HEADER, header, 1).encode()


def numbered_iris() -> bytes:
    """Iris's first two features and its label, named as pandas names unnamed columns (0, 1)."""
    _, *rows = IRIS.decode().splitlines()
    cells = [row.split(",") for row in rows if row]
    return "\n".join(["0,1,Species", *(",".join([*c[:2], c[-1]]) for c in cells)]).encode()


@pytest.fixture(scope="module")
def served(local: Local) -> Iterator[Local]:
    """Both models uploaded and served; at the end, the statuses of every request sent."""
    local.upload(f"{MODELS['iris']}.csv", IRIS)
    local.upload(f"{MODELS['unicode']}.csv", renamed_iris(UNICODE_FEATURES))
    local.upload(f"{MODELS['numbered']}.csv", numbered_iris())
    with ThreadPoolExecutor(len(MODELS)) as pool:
        for description in pool.map(local.wait_for_new_run, MODELS.values()):
            assert description["status"] == "ready", description
    yield local
    print(f"\nall live requests: {STATUSES.total()}, statuses {sorted(STATUSES.items())}")


def post(local: Local, request_: Hostile) -> requests.Response:
    # A seeded name in another case (IRIS) names this test's model in that case (API-LIVE).
    mapped = MODELS.get(request_.model.lower())
    model = request_.model if mapped is None else mapped
    model = model.upper() if request_.model.isupper() else model
    headers = {"Content-Type": request_.content_type} if request_.content_type else {}
    body = request_.body.encode() if isinstance(request_.body, str) else request_.body
    url = f"{local.api}/models/{model}/predict" + (f"?{request_.query}" if request_.query else "")
    response = requests.post(url, data=body, headers=headers, auth=local.signed, timeout=60)
    STATUSES[response.status_code] += 1
    return response


def as_answer(response: requests.Response) -> Answer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return Answer(response.status_code, headers, response.text)


def gateway_violations(response: requests.Response) -> list[str]:
    schema = {**spec()["components"]["schemas"]["GatewayError"], "components": {}}
    validator = jsonschema.Draft202012Validator(schema)
    problems = [error.message for error in validator.iter_errors(response.json())]
    if "retry-after" in {k.lower() for k in response.headers}:
        problems.append("Retry-After on an answer of API Gateway's own")
    return problems


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(served: Local, mode: GenerationMode) -> None:
    statuses: Counter[int] = Counter()
    session = requests.Session()
    session.auth = served.signed

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=generated_cases(mode, MODELS.values()))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=served.api, session=session, timeout=30)
        statuses[response.status_code] += 1
        judge(case, response, scripted={})

    fuzz()

    STATUSES.update(statuses)
    print(f"\n{mode.value}: {statuses.total()} live requests, statuses {sorted(statuses.items())}")
    assert statuses.total() >= EXAMPLES


LIVE_HOSTILE = [
    pytest.param(name, Hostile(*fields), id=name)
    for name, *fields in HOSTILE
    if fields[0] in MODELS or fields[0] not in SEEDED  # scripted endpoints are in process only
]


@pytest.mark.parametrize(("name", "request_"), LIVE_HOSTILE)
def test_hostile_request_gets_its_documented_status(
    served: Local, name: str, request_: Hostile
) -> None:
    response = post(served, request_)

    if name in GATEWAY_413:
        assert response.status_code == 413, response.text[:500]
        assert gateway_violations(response) == []
        return
    code = response.json()["error"]["code"] if response.status_code >= 400 else None
    assert (response.status_code, code) == (request_.status, request_.code), response.text[:500]
    assert spec_violations("POST", PREDICT, as_answer(response)) == []
    assert len(response.content) <= MAX_ERROR_BYTES or response.status_code == 200, (
        "errors stay small"
    )
    assert not [word for word in INTERNALS if word in response.text], response.text[:500]


def test_a_body_over_10_mb_is_refused_by_the_gateway(served: Local) -> None:
    body = b"1,2,3,4\n" * (10 * 1024 * 1024 // 8 + 1)
    oversized = Hostile("iris", body, "text/csv", "", 413, None)

    response = post(served, oversized)

    assert response.status_code == 413, response.text[:500]
    assert response.json() == {"message": "Request Entity Too Large"}
    assert gateway_violations(response) == []


def test_thousands_of_rows_come_back_in_order_with_class_names(served: Local) -> None:
    (rows,) = [Hostile(*fields) for name, *fields in HOSTILE if name == "10000-rows"]

    response = post(served, rows)

    assert response.status_code == 200, response.text[:500]
    document: dict[str, Any] = response.json()
    assert document["count"] == len(document["predictions"]) == 10_000
    assert {p["label"] for p in document["predictions"]} <= set(IRIS_CLASSES)
    assert spec_violations("POST", PREDICT, as_answer(response)) == []
