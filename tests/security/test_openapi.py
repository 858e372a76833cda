"""docs/openapi.yaml: a valid OpenAPI document that describes the template's routes and the code's
errors; a test fails if either drifts from it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from dropfit import errors
from openapi_spec_validator import validate
from schemathesis.core.result import Ok

from tests.security.api import SPEC_PATH, Answer, spec, spec_violations
from tests.template_utils import load_template

ROUTES_WITH_A_MODEL = (
    "/models/{model}",
    "/models/{model}/predict",
    "/models/{model}/report",
    "/models/{model}/runs",
    "/models/{model}/rollback",
)
# The route that answers an error, where it is not predict (which answers all the others).
ROLLBACK = ("POST", "/models/{model}/rollback")
ERROR_ROUTES = {
    errors.ReportNotFound: ("GET", "/models/{model}/report"),
    errors.RunNotFound: ROLLBACK,
    errors.LifecycleConflict: ROLLBACK,
}
# Every error the rollback route (the lifecycle route that can meet them all) answers.
ROLLBACK_ERRORS = (
    errors.InvalidModelName,
    errors.BadRequest,
    errors.ModelNotFound,
    errors.RunNotFound,
    errors.LifecycleConflict,
    errors.ApiError,
)


def _template_routes() -> set[tuple[str, str]]:
    routes = set()
    for resource in load_template()["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def _spec_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in spec()["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }


def test_the_spec_is_valid_openapi() -> None:
    validate(spec())  # raises with the offending part


def test_schemathesis_loads_every_operation() -> None:
    loaded = schemathesis.openapi.from_path(SPEC_PATH)
    results = list(loaded.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]

    assert len(operations) == len(results), "some operation is invalid"
    labels = {operation.label for operation in operations}

    assert labels == {f"{method} {path}" for method, path in _spec_routes()}


def test_the_spec_and_the_template_have_the_same_routes() -> None:
    assert _spec_routes() == _template_routes()


def test_every_route_with_a_model_documents_bad_and_unknown_names() -> None:
    for path in ROUTES_WITH_A_MODEL:
        for operation in spec()["paths"][path].values():
            assert {"400", "404", "500"} <= set(operation["responses"]), path


def _api_errors() -> list[type[errors.DropfitError]]:
    found: list[type[errors.DropfitError]] = [errors.InvalidModelName]
    todo = [errors.ApiError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def _error_answer(error: Any) -> Answer:
    retry_after = getattr(error("x"), "retry_after", None)
    message = "Internal error (request id r-1)." if error.code == "InternalError" else "x"
    return Answer(
        status=error.status,
        headers={"content-type": "application/json"}
        | ({"retry-after": str(retry_after)} if retry_after else {}),
        body=json.dumps({"error": {"code": error.code, "message": message}}),
    )


@pytest.mark.parametrize("error", _api_errors(), ids=lambda cls: cls.__name__)
def test_every_error_the_code_can_answer_is_documented_for_its_route(error: Any) -> None:
    method, path = ERROR_ROUTES.get(error, ("POST", "/models/{model}/predict"))
    assert spec_violations(method, path, _error_answer(error)) == []


@pytest.mark.parametrize("error", ROLLBACK_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_of_the_lifecycle_is_documented_for_rollback(error: Any) -> None:
    assert spec_violations(*ROLLBACK, _error_answer(error)) == []


def test_retry_after_is_required_where_the_code_sends_it() -> None:
    responses = spec()["paths"]["/models/{model}/predict"]["post"]["responses"]
    for status in ("429", "503"):
        assert "Retry-After" in responses[status]["headers"], status
    answer = Answer(
        503,
        {"content-type": "application/json"},
        '{"error": {"code": "ModelNotReady", "message": "x"}}',
    )
    assert spec_violations("POST", "/models/{model}/predict", answer) == [
        "missing header Retry-After"
    ]
