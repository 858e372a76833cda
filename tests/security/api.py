"""The HTTP API's functions in process, and docs/openapi.yaml as the judge of answers.

``PredictApi`` seeds models in every state the API can meet (moto's table and SageMaker control
plane; a fake k-NN runtime), and serves requests the way API Gateway would hand them to the
function of their route (predict, or manage for the lifecycle routes): as a WSGI app for
schemathesis, or event by event.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml
from dropfit.aws.table import RunsTable
from dropfit.records import Run, RunStatus
from dropfit.run_metadata import metadata_key
from dropfit.sagemaker_requests import model_request, serverless_endpoint_config_request

from tests.metadata_fixture import iris_metadata
from tests.security.scenarios import FakeEndpoints
from tests.security.world import NAMES, World, function_of, http_event, route_of
from tests.template_utils import ROOT

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
IRIS_FEATURES = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
UNICODE_FEATURES = ["été", "宽度", "🌸 petals", "Ωmega"]
WIDE_FEATURES = [f"f{i}" for i in range(100)]
# The widest names a model can have: 1,000 features of 128 characters, 3 bytes each in UTF-8.
LONG_NAMES = [f"{i:04d}" + "特征" * 62 for i in range(1_000)]
NUMBERED_FEATURES = ["0", "1"]  # pandas' header for unnamed columns
CREATED = "2025-03-14T09:00:00.000Z"


@dataclass(frozen=True)
class Seed:
    model: str
    features: list[str]
    classes: list[str] | None
    served: bool = True
    error: tuple[str, int] | None = None  # what the endpoint answers instead (code, HTTP status)
    reason: str | None = None  # why its only run failed (not served)

    @property
    def run(self) -> str:
        return f"{NAMES.name_prefix}-{self.model}-0123456789ab"


SEEDS = (
    Seed("iris", IRIS_FEATURES, IRIS_CLASSES),
    Seed("wine", ["acidity", "sugar", "alcohol"], None),
    Seed("unicode", UNICODE_FEATURES, ["été", "冬"]),
    Seed("wide", WIDE_FEATURES, ["no", "yes"]),
    Seed("pending", IRIS_FEATURES, IRIS_CLASSES, served=False),
    Seed("starting", IRIS_FEATURES, IRIS_CLASSES, error=("ModelNotReadyException", 429)),
    Seed("busy", IRIS_FEATURES, IRIS_CLASSES, error=("ThrottlingException", 400)),
    Seed("broken", IRIS_FEATURES, IRIS_CLASSES, error=("ModelError", 424)),
    Seed("numbered", NUMBERED_FEATURES, ["no", "yes"]),
    Seed("long-names", LONG_NAMES, ["no", "yes"]),
    Seed(
        "leaky",
        IRIS_FEATURES,
        IRIS_CLASSES,
        served=False,
        # what an unredacted SageMaker failure would show
        reason=(
            f"Training job failed: ClientError: cannot read s3://{NAMES.bucket}/incoming/leaky.csv"
            f" as {NAMES.role_arn} with {NAMES.knn_image} in account {NAMES.account}."
        ),
    ),
)
SEEDED = {seed.model: seed for seed in SEEDS}


class PredictApi:
    """The predict function behind a stand-in for API Gateway, with every seeded model."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.handler = world.function("predict")
        self.endpoints = FakeEndpoints()
        self.endpoints.install(world.client("predict", "sagemaker-runtime"))
        self.statuses: Counter[int] = Counter()
        self._seed()

    def _seed(self) -> None:
        runs = RunsTable(NAMES.table, self.world.dynamodb)
        for seed in SEEDS:
            run = Run(
                model=seed.model,
                job=seed.run,
                status=(
                    RunStatus.DEPLOYED
                    if seed.served
                    else RunStatus.FAILED
                    if seed.reason
                    else RunStatus.TRAINING
                ),
                reason=seed.reason,
                created_at=CREATED,
                source={"bucket": NAMES.bucket, "key": f"incoming/{seed.model}.csv"},
                options={"test_fraction": "0.25"},
                predictor_type="classifier" if seed.classes else "regressor",
                metrics={"test:accuracy": 0.97} if seed.served else None,
            )
            if seed.served:
                self.world.s3.put_object(
                    Bucket=NAMES.bucket,
                    Key=metadata_key("datasets/", seed.model, seed.run),
                    Body=iris_metadata(
                        label_column="label",
                        feature_names=seed.features,
                        predictor_type=run.predictor_type or "classifier",
                        classes=seed.classes,
                    ).to_json(),
                )
            assert runs.claim_run(run)
            endpoint = f"{NAMES.name_prefix}-{seed.model}"
            assert runs.record_upload(
                seed.model, endpoint, seed.run, None, created_at=run.created_at
            )
            if not seed.served:
                continue
            runs.update_model(seed.model, desired_run=seed.run, deployed_run=seed.run)
            self._serve_in_moto(seed, endpoint)
            self.endpoints.variant[endpoint] = seed.run
            if seed.error:
                self.endpoints.errors[endpoint] = seed.error
            if seed.classes:
                self.endpoints.classes = min(self.endpoints.classes, len(seed.classes))

    def _serve_in_moto(self, seed: Seed, endpoint: str) -> None:
        sagemaker = self.world.sagemaker
        sagemaker.create_model(
            **model_request(
                name=seed.run,
                model=seed.model,
                image_uri=NAMES.knn_image,
                artifact_uri=f"s3://{NAMES.bucket}/models/{seed.model}/model.tar.gz",
                role_arn=NAMES.role_arn,
            )
        )
        sagemaker.create_endpoint_config(
            **serverless_endpoint_config_request(
                name=seed.run, model=seed.model, memory_mb=2048, max_concurrency=5
            )
        )
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=seed.run)

    def call(self, event: dict[str, Any]) -> Answer:
        name = function_of(event["routeKey"])
        response = (self.handler if name == "predict" else self.world.function(name))(event)
        answer = Answer(
            status=int(response["statusCode"]),
            headers={k.lower(): v for k, v in (response.get("headers") or {}).items()},
            body=response.get("body", ""),
        )
        self.statuses[answer.status] += 1
        return answer

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        content_type: str | None = None,
        query: str = "",
    ) -> Answer:
        headers = {"content-type": content_type} if content_type else {}
        return self.call(http_event(method, path, body=body, headers=headers, query=query))

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """API Gateway's part for schemathesis: route, build the event, answer."""
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
        raw_path = raw_path.split("?", 1)[0]
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if route_of(method, raw_path) is None:
            answer = Answer(404, {"content-type": "application/json"}, '{"message":"Not Found"}')
        else:
            event = http_event(
                method, raw_path, body=body, headers=headers, query=environ["QUERY_STRING"]
            )
            answer = self.call(event)
        start_response(f"{answer.status} X", list(answer.headers.items()))
        return [answer.body.encode()]


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: Python's json would take NaN and Infinity, clients would not."""
    return json.loads(text, parse_constant=_not_json)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return strict_json(self.body)


# ------------------------------------------------------------------ the spec as judge


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def spec_violations(method: str, route: str, answer: Answer) -> list[str]:
    """How an answer departs from the spec's response for (method, route, status): [] if not."""
    operation = spec()["paths"][route][method.lower()]
    documented = operation["responses"].get(str(answer.status))
    if documented is None:
        return [f"status {answer.status} is not documented for {method} {route}"]
    response = _deref(documented)
    problems = []
    for name, reference in response.get("headers", {}).items():
        header = _deref(reference)
        value = answer.headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"missing header {name}")
            continue
        problems += _schema_errors(header["schema"], value, f"header {name}")
    if answer.headers.get("content-type", "").split(";")[0] != "application/json":
        problems.append(f"content type {answer.headers.get('content-type')!r}")
        return problems
    try:
        document = answer.json()
    except ValueError as error:
        return [*problems, f"body is not JSON: {error}"]
    schema = response["content"]["application/json"]["schema"]
    return problems + _schema_errors(schema, document, "body")


def _schema_errors(schema: dict[str, Any], instance: Any, where: str) -> list[str]:
    rooted = {**schema, "components": spec()["components"]}
    validator = jsonschema.Draft202012Validator(rooted)
    return [f"{where}: {error.message[:300]}" for error in validator.iter_errors(instance)]
