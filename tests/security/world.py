"""A small Dropfit in one process: moto resources, the three functions, events, and a call recorder.

The resources are named as ``events/env.json`` names them (the environment `sam local invoke`
gives each function), so the functions, loaded inside the mock with that environment, find them.
Every AWS call a function's module-level clients make is recorded with its parameters (botocore's
``before-parameter-build`` event, which fires for Stubber-answered calls too).

This is the security tests' own harness: it shares nothing with tests/handlers, whose fixtures
serve other purposes and may change with them.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.client import BaseClient
from botocore.response import StreamingBody
from moto import mock_aws

from tests.conftest import load_function
from tests.template_utils import ROOT, load_template

EVENTS = ROOT / "events"
FUNCTIONS = {
    "format": "FormatFunction",
    "deploy": "DeployFunction",
    "predict": "PredictFunction",
    "report": "ReportFunction",
    "manage": "ManageFunction",
}


def read_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def function_env(logical_id: str) -> dict[str, str]:
    env: dict[str, str] = read_event("env.json")[logical_id]
    return env


@dataclass(frozen=True)
class Names:
    """The stack's physical names and ARNs, as events/env.json gives them."""

    region: str
    account: str
    bucket: str
    table: str
    topic_arn: str
    role_arn: str
    name_prefix: str
    incoming: str
    knn_image: str
    processing_role_arn: str
    # Not in any function's environment (only Lambda's destination uses it): a made-up name.
    queue_arn: str

    @classmethod
    def from_env(cls) -> Names:
        env = function_env("FormatFunction")
        _, _, _, region, account, _ = env["FAILURE_TOPIC_ARN"].split(":", 5)
        return cls(
            region=region,
            account=account,
            bucket=env["BUCKET_NAME"],
            table=env["TABLE_NAME"],
            topic_arn=env["FAILURE_TOPIC_ARN"],
            role_arn=env["SAGEMAKER_ROLE_ARN"],
            name_prefix=env["NAME_PREFIX"],
            incoming=env["INCOMING_PREFIX"],
            knn_image=env["KNN_IMAGE_URI"],
            processing_role_arn=env["PROCESSING_ROLE_ARN"],
            queue_arn=f"arn:aws:sqs:{region}:{account}:dropfit-DeadLetterQueue-1EXAMPLE5GH6I",
        )


NAMES = Names.from_env()


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Call:
    """One AWS API call: who made it, to which service (IAM prefix), with what parameters.

    ``origin`` is ``recorded`` for calls the code made, ``platform`` for the few a service makes
    with the principal's role on its behalf (see scenarios.py), which no local run can observe.
    """

    principal: str
    service: str
    operation: str
    params: dict[str, Any]
    origin: str = "recorded"
    note: str = ""


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def attach(self, principal: str, client: BaseClient) -> None:
        service_id = client.meta.service_model.service_id.hyphenize()
        prefix = client.meta.service_model.signing_name  # the IAM prefix (sagemaker-runtime too)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append(Call(principal, prefix, model.name, _plain(params)))

        client.meta.events.register(
            f"before-parameter-build.{service_id}",
            record,
            unique_id=f"security-recorder-{principal}-{id(client)}",
        )

    def attach_module(self, principal: str, module: ModuleType) -> list[BaseClient]:
        """Record every botocore client reachable from the module's globals."""
        clients = list(clients_of(module))
        assert clients, f"{module.__name__} holds no AWS client"
        for client in clients:
            self.attach(principal, client)
        return clients

    def platform(self, principal: str, service: str, operation: str, note: str, **params: Any):
        self.calls.append(Call(principal, service, operation, params, "platform", note))

    def of(self, principal: str) -> list[Call]:
        return [call for call in self.calls if call.principal == principal]

    def params_of(self, principal: str, operation: str, **match: Any) -> dict[str, Any]:
        """The parameters of the one ``operation`` call of ``principal`` with those ``match``."""
        (params,) = [
            call.params
            for call in self.of(principal)
            if call.operation == operation
            and all(call.params.get(name) == value for name, value in match.items())
        ]
        return params


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """A copy without request bodies (file objects and bytes are not needed to authorise)."""
    return {k: v for k, v in params.items() if k != "Body"}


def clients_of(root: Any) -> Iterator[BaseClient]:
    """botocore clients held by a module's globals, their attributes and dataclass fields."""
    seen: set[int] = set()
    todo = [v for k, v in vars(root).items() if not k.startswith("__")]
    while todo:
        value = todo.pop()
        if id(value) in seen or isinstance(value, type | ModuleType):
            continue
        seen.add(id(value))
        if isinstance(value, BaseClient):
            yield value
        elif dataclasses.is_dataclass(value):
            todo += [getattr(value, f.name) for f in dataclasses.fields(value)]
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("dropfit"):
            todo += list(vars(value).values())


# --------------------------------------------------------------------------- the stack


@dataclass
class World:
    """moto resources, the functions loaded inside the mock, and what they called."""

    monkeypatch: pytest.MonkeyPatch
    recorder: Recorder = field(default_factory=Recorder)
    modules: dict[str, ModuleType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=NAMES.region)
        self.dynamodb = boto3.client("dynamodb", region_name=NAMES.region)
        self.sagemaker = boto3.client("sagemaker", region_name=NAMES.region)
        self.sns = boto3.client("sns", region_name=NAMES.region)
        self.iam = boto3.client("iam", region_name=NAMES.region)

    def create_resources(self) -> None:
        resources = load_template()["Resources"]
        self.s3.create_bucket(
            Bucket=NAMES.bucket,
            CreateBucketConfiguration={"LocationConstraint": NAMES.region},  # type: ignore[typeddict-item]
        )
        self.s3.put_bucket_versioning(
            Bucket=NAMES.bucket,
            VersioningConfiguration=resources["DataBucket"]["Properties"][
                "VersioningConfiguration"
            ],
        )
        table = resources["RunsTable"]["Properties"]
        self.dynamodb.create_table(
            TableName=NAMES.table,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        topic = self.sns.create_topic(Name=NAMES.topic_arn.rsplit(":", 1)[1])["TopicArn"]
        assert topic == NAMES.topic_arn
        role = self.iam.create_role(
            RoleName=NAMES.role_arn.rsplit("/", 1)[1],
            AssumeRolePolicyDocument=json.dumps(
                resources["SageMakerExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
            ),
        )["Role"]["Arn"]
        assert role == NAMES.role_arn
        processing = self.iam.create_role(
            RoleName=NAMES.processing_role_arn.rsplit("/", 1)[1],
            AssumeRolePolicyDocument=json.dumps(
                resources["ProcessingJobRole"]["Properties"]["AssumeRolePolicyDocument"]
            ),
        )["Role"]["Arn"]
        assert processing == NAMES.processing_role_arn

    def function(self, name: str) -> Callable[[dict[str, Any]], Any]:
        """functions/<name>/app.py, imported with its environment, its clients recorded."""
        if name not in self.modules:
            logical_id = FUNCTIONS[name]
            for variable, value in function_env(logical_id).items():
                self.monkeypatch.setenv(variable, value)
            module = load_function(name)
            self.recorder.attach_module(logical_id, module)
            self.modules[name] = module
        module = self.modules[name]
        context = LambdaContext(function_name=f"dropfit-{name}")
        return lambda event: module.lambda_handler(event, context)

    def clients(self, name: str) -> list[BaseClient]:
        """The botocore clients functions/<name>/app.py holds (what tests stub or answer)."""
        self.function(name)
        return list(clients_of(self.modules[name]))

    def client(self, name: str, service: str) -> BaseClient:
        (found,) = [
            c for c in self.clients(name) if c.meta.service_model.service_id.hyphenize() == service
        ]
        return found

    # --- uploads ------------------------------------------------------------------------

    def upload(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> str:
        response = self.s3.put_object(
            Bucket=NAMES.bucket, Key=key, Body=body, Metadata=metadata or {}
        )
        return str(response["VersionId"])

    def bucket_state(self) -> list[tuple[str, str, str]]:
        listed = self.s3.list_object_versions(Bucket=NAMES.bucket)
        return sorted(
            [(v["Key"], v["VersionId"], v["ETag"]) for v in listed.get("Versions", [])]
            + [(m["Key"], m["VersionId"], "marker") for m in listed.get("DeleteMarkers", [])]
        )


@contextmanager
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", NAMES.region)
    monkeypatch.setenv("AWS_REGION", NAMES.region)
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        built = World(monkeypatch)
        built.create_resources()
        yield built


@dataclass(frozen=True)
class LambdaContext:
    """What Powertools reads from the Lambda context."""

    function_name: str
    aws_request_id: str = "5d2f6a34-1c2b-4e8f-9a0b-7c6d5e4f3a21"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{NAMES.region}:{NAMES.account}:function:dropfit"
    log_group_name: str = "/aws/lambda/dropfit"
    log_stream_name: str = "2025/03/14/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# --------------------------------------------------------------------------- events


def object_created(key: str, version_id: str | None, size: int = 1, etag: str = "e") -> dict:
    """S3's "Object Created" event for EventBridge: the key arrives URL-encoded."""
    event = read_event("s3-object-created.json")
    event["detail"]["bucket"]["name"] = NAMES.bucket
    event["resources"] = [f"arn:aws:s3:::{NAMES.bucket}"]
    obj = event["detail"]["object"]
    obj.update({"key": quote_plus(key, safe="/"), "size": size, "etag": etag})
    if version_id is None:
        del obj["version-id"]
    else:
        obj["version-id"] = version_id
    return event


def processing_finished(
    job: str, status: str = "Completed", exit_message: str | None = None
) -> dict:
    """The "Processing Job State Change" SageMaker sends when a Processing job ends."""
    detail: dict[str, Any] = {"ProcessingJobName": job, "ProcessingJobStatus": status}
    if exit_message is not None:
        detail |= {"ExitMessage": exit_message, "FailureReason": "AlgorithmError: see the logs"}
    return {
        "version": "0",
        "id": "processing-event",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": NAMES.account,
        "time": "2025-03-14T09:31:02Z",
        "region": NAMES.region,
        "resources": [f"arn:aws:sagemaker:{NAMES.region}:{NAMES.account}:processing-job/{job}"],
        "detail": detail,
    }


def training_finished(job: str, status: str = "Completed", reason: str | None = None) -> dict:
    name = "training-completed.json" if status == "Completed" else "training-failed.json"
    text = json.dumps(read_event(name)).replace(f"{NAMES.name_prefix}-iris-0123456789ab", job)
    event = json.loads(text)
    event["detail"]["TrainingJobStatus"] = status
    if reason is not None:
        event["detail"]["FailureReason"] = reason
    return event


def endpoint_changed(endpoint: str, config: str, status: str = "IN_SERVICE") -> dict:
    event = read_event("endpoint-in-service.json")
    text = json.dumps(event).replace(f"{NAMES.name_prefix}-iris-0123456789ab", config)
    event = json.loads(re.sub(rf"{NAMES.name_prefix}-iris\b", endpoint, text))
    event["detail"]["EndpointStatus"] = status
    return event


# Content types API Gateway passes as text; any other body arrives base64-encoded.
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|javascript|ecmascript|xml|x-www-form-urlencoded|graphql|"
    r"yaml|x-yaml|x-ndjson|[\w.+-]+\+(json|xml)))$"
)


@functools.cache
def template_routes() -> dict[tuple[str, str], str]:
    """(METHOD, path template) -> the short name of the function whose HttpApi event it is."""
    names = {logical_id: name for name, logical_id in FUNCTIONS.items()}
    routes = {}
    for logical_id, resource in load_template()["Resources"].items():
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            if event["Type"] == "HttpApi":
                key = (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                routes[key] = names[logical_id]
    return routes


def route_of(method: str, raw_path: str) -> tuple[str, dict[str, str] | None] | None:
    """The template route (route key, path parameters) a request matches, as API Gateway does."""
    from urllib.parse import unquote

    segments = raw_path.strip("/").split("/")
    for route_method, path in template_routes():
        parts = path.strip("/").split("/")
        if route_method != method or len(parts) != len(segments):
            continue
        params = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    break
                params[part.strip("{}")] = unquote(segment)
            elif part != segment:
                break
        else:
            return f"{method} {path}", params or None
    return None


def function_of(route_key: str) -> str:
    """The short name of the function serving ``route_key`` ("METHOD /path")."""
    method, path = route_key.split(" ", 1)
    return template_routes()[(method, path)]


def http_event(
    method: str,
    raw_path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload 2.0) event for a request to one of the template's routes.

    Like API Gateway: header names in lower case, repeated query parameters joined with commas,
    and a body whose content type is not text (or not given) base64-encoded.
    """
    from base64 import b64encode
    from urllib.parse import parse_qsl, unquote

    route = route_of(method, raw_path)
    if route is None:
        raise LookupError(f"no route for {method} {raw_path}")
    route_key, params = route
    event = read_event("api-predict.json")
    event["headers"] = {"host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"} | {
        k.lower(): v for k, v in (headers or {}).items()
    }
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["rawPath"] = raw_path
    event["requestContext"]["http"].update({"method": method, "path": unquote(raw_path)})
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    merged: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    if merged:
        event["queryStringParameters"] = merged
    if params is None:
        event.pop("pathParameters", None)
    else:
        event["pathParameters"] = params
    raw = body.encode() if isinstance(body, str) else body
    media = event["headers"].get("content-type", "").split(";", 1)[0].strip().lower()
    binary = bool(raw) and not _TEXT_TYPES.match(media)
    event["isBase64Encoded"] = binary
    if not raw:
        event.pop("body", None)
    else:
        event["body"] = b64encode(raw).decode() if binary else raw.decode("utf-8", "replace")
    return event


def streaming(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))
