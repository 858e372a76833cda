"""Read template.yaml the way the local stack needs it: intrinsics resolved to local values.

The template is the single source of truth: functions (with ``Globals`` merged), their
EventBridge rules and HTTP routes, the bucket, table, topics, queues and the Outputs all come
from here, never from a second list in code. Local physical names are deterministic
(``<stack>-<LogicalId>``) and resource ARNs use the pseudo parameters, so every value a handler
sees (``TABLE_NAME``, ``FAILURE_TOPIC_ARN`` ...) is what the local moto server holds.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# AWS::StackId is derived from the others (see stack_id) unless given.
DEFAULT_PSEUDO_PARAMETERS: Mapping[str, str] = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "dropfit-local",
    "AWS::NotificationARNs": "",
}
FUNCTION_TYPES = ("AWS::Serverless::Function",)
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
IMPLICIT_HTTP_API = "ServerlessHttpApi"  # what SAM calls the API of HttpApi events without ApiId
DEFAULT_ASYNC_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous invocation
NO_VALUE = object()  # AWS::NoValue: the key or list item disappears


class TemplateError(ValueError):
    """The template uses something the local stack cannot resolve (the message says what)."""


# ---------------------------------------------------------------------------- loading


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (``!Ref x``) as their long forms."""


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")


def _short_form(key: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_any(loader, node)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    return construct


for _tag in (
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
):
    _CfnLoader.add_constructor(f"!{_tag}", _short_form(f"Fn::{_tag}"))
_CfnLoader.add_constructor("!Ref", _short_form("Ref"))
_CfnLoader.add_constructor("!Condition", _short_form("Condition"))


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data, short forms turned into ``{"Ref": ...}``/``{"Fn::X": ...}``."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_CfnLoader)  # a SafeLoader subclass: no objects
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} has no Resources section")
    return document


# ---------------------------------------------------------------------------- resolving


@dataclass(frozen=True)
class Physical:
    """What ``Ref`` and ``Fn::GetAtt`` give for one resource in the local stack."""

    ref: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and local resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, str] | None = None,
        pseudo_parameters: Mapping[str, str] | None = None,
        aws_endpoint_url: str = "http://127.0.0.1:5000",
    ) -> None:
        self.template = template
        pseudo = {**DEFAULT_PSEUDO_PARAMETERS, **(pseudo_parameters or {})}
        pseudo.setdefault("AWS::StackId", stack_id(pseudo))
        self.pseudo = pseudo
        self.aws_endpoint_url = aws_endpoint_url.rstrip("/")
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters = self._parameter_values(parameters or {})
        self._physical: dict[str, Physical] = {}
        self._conditions: dict[str, bool] = {}
        self._resolving: set[str] = set()

    # -- parameters and conditions

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared: Mapping[str, Any] = self.template.get("Parameters", {}) or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(
                f"unknown parameter(s) {sorted(unknown)}; declared: {sorted(declared)}"
            )
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                raw = str(overrides[name])
            elif "Default" in spec:
                raw = _scalar_text(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no Default: pass a value for it")
            _check_parameter(name, spec, raw)
            kind = str(spec.get("Type", "String"))
            is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
            values[name] = [item.strip() for item in raw.split(",")] if is_list else raw
        return values

    def condition(self, name: str) -> bool:
        """The value of a named condition of the ``Conditions`` section."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {}) or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._condition_value(conditions[name]))
        return self._conditions[name]

    def _condition_value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1 and "Condition" in node:
            return self.condition(str(node["Condition"]))
        return self.resolve(node)

    def is_enabled(self, resource: Mapping[str, Any]) -> bool:
        """False when the resource (or output) has a ``Condition`` that is false."""
        name = resource.get("Condition")
        return True if name is None else self.condition(str(name))

    # -- resources

    def physical(self, logical_id: str) -> Physical:
        """Ref and attributes of a resource (SAM-generated rules included)."""
        if logical_id not in self._physical:
            if logical_id in self._resolving:
                raise TemplateError(f"circular reference through {logical_id}")
            self._resolving.add(logical_id)
            try:
                self._physical[logical_id] = self._assign(logical_id)
            finally:
                self._resolving.discard(logical_id)
        return self._physical[logical_id]

    def _name(self, logical_id: str, properties: Mapping[str, Any], key: str | None) -> str:
        if key and key in properties:
            return str(self.resolve(properties[key]))
        return f"{self.pseudo['AWS::StackName']}-{logical_id}"

    def _assign(self, logical_id: str) -> Physical:
        region, account = self.pseudo["AWS::Region"], self.pseudo["AWS::AccountId"]
        partition, suffix = self.pseudo["AWS::Partition"], self.pseudo["AWS::URLSuffix"]
        resource = self.resources.get(logical_id)
        if resource is None:
            if logical_id == IMPLICIT_HTTP_API and _has_implicit_api(self.resources):
                api_id = _digest(logical_id, 10)
                return Physical(api_id, {"ApiEndpoint": api_endpoint(api_id, region, suffix)})
            if _sam_generated_rule(self.resources, logical_id) is None:
                raise TemplateError(f"reference to unknown resource {logical_id!r}")
            return self._rule_physical(f"{self.pseudo['AWS::StackName']}-{logical_id}")
        kind = resource.get("Type", "")
        props: Mapping[str, Any] = resource.get("Properties", {}) or {}
        if kind == "AWS::S3::Bucket":
            name = self._name(logical_id, props, "BucketName").lower()
            return Physical(
                name,
                {
                    "Arn": f"arn:{partition}:s3:::{name}",
                    "DomainName": f"{name}.s3.{suffix}",
                    "RegionalDomainName": f"{name}.s3.{region}.{suffix}",
                },
            )
        if kind == "AWS::DynamoDB::Table":
            name = self._name(logical_id, props, "TableName")
            arn = f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"
            return Physical(name, {"Arn": arn, "StreamArn": f"{arn}/stream/local"})
        if kind == "AWS::SNS::Topic":
            name = self._name(logical_id, props, "TopicName")
            arn = f"arn:{partition}:sns:{region}:{account}:{name}"
            return Physical(arn, {"TopicArn": arn, "TopicName": name})
        if kind == "AWS::SQS::Queue":
            name = self._name(logical_id, props, "QueueName")
            if self.resolve(props.get("FifoQueue", False)) in (True, "true") and not name.endswith(
                ".fifo"
            ):
                name += ".fifo"
            url = f"{self.aws_endpoint_url}/{account}/{name}"
            arn = f"arn:{partition}:sqs:{region}:{account}:{name}"
            return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})
        if kind in (*FUNCTION_TYPES, "AWS::Lambda::Function"):
            name = self._name(logical_id, props, "FunctionName")
            return Physical(
                name, {"Arn": f"arn:{partition}:lambda:{region}:{account}:function:{name}"}
            )
        if kind in LAYER_TYPES:
            name = self._name(logical_id, props, "LayerName")
            return Physical(f"arn:{partition}:lambda:{region}:{account}:layer:{name}:1")
        if kind == "AWS::IAM::Role":
            name = self._name(logical_id, props, "RoleName")
            arn = f"arn:{partition}:iam::{account}:role/{name}"
            return Physical(name, {"Arn": arn, "RoleId": f"AROA{_digest(name, 17).upper()}"})
        if kind in (HTTP_API_TYPE, "AWS::ApiGatewayV2::Api"):
            api_id = _digest(logical_id, 10)
            return Physical(api_id, {"ApiEndpoint": api_endpoint(api_id, region, suffix)})
        if kind == "AWS::Logs::LogGroup":
            name = self._name(logical_id, props, "LogGroupName")
            arn = f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*"
            return Physical(name, {"Arn": arn})
        if kind == "AWS::Events::Rule":
            return self._rule_physical(self._name(logical_id, props, "Name"))
        return Physical(self._name(logical_id, props, None))

    def _rule_physical(self, name: str) -> Physical:
        region, account = self.pseudo["AWS::Region"], self.pseudo["AWS::AccountId"]
        arn = f"arn:{self.pseudo['AWS::Partition']}:events:{region}:{account}:rule/{name}"
        return Physical(name, {"Arn": arn})

    # -- intrinsic functions

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function evaluated (``AWS::NoValue`` items removed)."""
        value = self._resolve(node)
        return None if value is NO_VALUE else value

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self._resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), *_ = node.items()
            if key == "Ref":
                return self._ref(str(argument))
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self._resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical(name).ref

    def _get_att(self, resource: str, attribute: str) -> Any:
        attributes = self.physical(resource).attributes
        if attribute not in attributes:
            kind = self.resources.get(resource, {}).get("Type", "a generated resource")
            raise TemplateError(
                f"Fn::GetAtt {resource}.{attribute}: the local stack knows "
                f"{sorted(attributes) or 'no attributes'} of {kind}"
            )
        return attributes[attribute]

    def _function(self, key: str, argument: Any) -> Any:
        if key == "Fn::GetAtt":
            resource, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else map(str, argument)
            )
            return self._get_att(str(self._resolve(resource)), str(self._resolve(attribute)))
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::Join":
            separator, items = argument
            return str(separator).join(_scalar_text(i) for i in self._resolve(items))
        if key == "Fn::Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = self._resolve(argument)
            return str(text).split(str(separator))
        if key == "Fn::FindInMap":
            return self._find_in_map(argument)
        if key == "Fn::If":
            name, if_true, if_false = argument
            return self._resolve(if_true if self.condition(str(name)) else if_false)
        if key == "Fn::Equals":
            left, right = (self._condition_value(a) for a in argument)
            return _scalar_text(left) == _scalar_text(right)
        if key == "Fn::Not":
            return not self._condition_value(argument[0])
        if key == "Fn::And":
            return all(self._condition_value(a) for a in argument)
        if key == "Fn::Or":
            return any(self._condition_value(a) for a in argument)
        if key == "Fn::Base64":
            return base64.b64encode(str(self._resolve(argument)).encode()).decode()
        if key == "Fn::GetAZs":
            region = self._resolve(argument) or self.pseudo["AWS::Region"]
            return [f"{region}{zone}" for zone in "abc"]
        raise TemplateError(f"{key} is not supported by the local stack")

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top, second = (self._resolve(a) for a in argument[:3])
        mappings = self.template.get("Mappings", {}) or {}
        try:
            return mappings[map_name][top][second]
        except KeyError:
            if (
                len(argument) > 3
                and isinstance(argument[3], dict)
                and "DefaultValue" in argument[3]
            ):
                return self._resolve(argument[3]["DefaultValue"])
            raise TemplateError(f"Fn::FindInMap: no {map_name}.{top}.{second}") from None

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self._resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar_text(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return _scalar_text(self._get_att(resource, attribute))
            return _scalar_text(self._ref(name))

        return _SUB_VARIABLE.sub(replace, str(text))


def _scalar_text(value: Any) -> str:
    """A parameter or Sub value as CloudFormation renders it (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar_text(v) for v in value)
    return str(value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_scalar_text(a) for a in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")


def stack_id(pseudo: Mapping[str, str]) -> str:
    """The stack's ARN as CloudFormation gives it, with a UUID of its own per stack name,
    account and region: stacks of other names get other ids (and other SageMaker prefixes)."""
    partition, region = pseudo["AWS::Partition"], pseudo["AWS::Region"]
    account, name = pseudo["AWS::AccountId"], pseudo["AWS::StackName"]
    unique = uuid.uuid5(uuid.NAMESPACE_URL, f"{partition}/{account}/{region}/{name}")
    return f"arn:{partition}:cloudformation:{region}:{account}:stack/{name}/{unique}"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def api_endpoint(api_id: str, region: str, url_suffix: str) -> str:
    """The default endpoint of an HTTP API, as its ``ApiEndpoint`` attribute gives it."""
    return f"https://{api_id}.execute-api.{region}.{url_suffix}"


def _has_implicit_api(resources: Mapping[str, Any]) -> bool:
    """SAM creates ``ServerlessHttpApi`` for HttpApi events that name no ``ApiId``."""
    return any(
        event.get("Type") == "HttpApi" and "ApiId" not in (event.get("Properties") or {})
        for resource in resources.values()
        if resource.get("Type") in FUNCTION_TYPES
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values()
    )


def _sam_generated_rule(resources: Mapping[str, Any], logical_id: str) -> tuple[str, str] | None:
    """SAM names the rule of function F's EventBridgeRule event E ``FE``: find (F, E)."""
    for function_id, resource in resources.items():
        if resource.get("Type") not in FUNCTION_TYPES or not logical_id.startswith(function_id):
            continue
        events = (resource.get("Properties", {}) or {}).get("Events", {}) or {}
        event_id = logical_id[len(function_id) :]
        if events.get(event_id, {}).get("Type") == "EventBridgeRule":
            return function_id, event_id
    return None


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class EventRule:
    """An ``EventBridgeRule`` event of a function: the rule SAM would create for it."""

    function_id: str
    event_id: str
    rule_name: str
    rule_arn: str
    event_bus: str
    pattern: dict[str, Any]
    retry_attempts: int | None
    dead_letter_arn: str | None


@dataclass(frozen=True)
class HttpRoute:
    """An ``HttpApi`` event of a function: ``$default`` or ``METHOD /path`` (method ``ANY``)."""

    function_id: str
    event_id: str
    api_id: str
    method: str
    path: str
    payload_format_version: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class FunctionSpec:
    """A function with ``Globals`` merged and every value resolved."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    layers: tuple[Path, ...]
    environment: dict[str, str]
    max_retry_attempts: int
    on_failure_arn: str | None
    rules: tuple[EventRule, ...]
    routes: tuple[HttpRoute, ...]

    @property
    def label(self) -> str:
        """Short name for log prefixes: ``FormatFunction`` -> ``format``."""
        base = self.logical_id.removesuffix("Function") or self.logical_id
        return re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    versioning: bool
    eventbridge: bool


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    create_arguments: dict[str, Any]
    ttl_attribute: str | None


@dataclass(frozen=True)
class TopicSpec:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class ApiAuthSpec:
    """An HTTP API's default authorizer: ``IAM``, ``JWT`` (issuer, audiences) or ``NONE``."""

    mode: str = "NONE"
    jwt_issuer: str = ""
    jwt_audiences: tuple[str, ...] = ()
    identity_source: str = "$request.header.Authorization"


@dataclass(frozen=True)
class HttpApiSpec:
    logical_id: str
    api_id: str
    endpoint: str
    auth: ApiAuthSpec = ApiAuthSpec()


@dataclass(frozen=True)
class StackModel:
    """Everything the local stack builds, as the template says it."""

    root: Path
    resolver: Resolver
    functions: tuple[FunctionSpec, ...]
    buckets: tuple[BucketSpec, ...]
    tables: tuple[TableSpec, ...]
    topics: tuple[TopicSpec, ...]
    queues: tuple[QueueSpec, ...]
    apis: tuple[HttpApiSpec, ...]
    outputs: dict[str, Any]

    @property
    def region(self) -> str:
        return self.resolver.pseudo["AWS::Region"]

    @property
    def account_id(self) -> str:
        return self.resolver.pseudo["AWS::AccountId"]

    @property
    def routes(self) -> tuple[HttpRoute, ...]:
        return tuple(route for function in self.functions for route in function.routes)

    def function(self, logical_id: str) -> FunctionSpec:
        for function in self.functions:
            if function.logical_id == logical_id:
                return function
        raise KeyError(logical_id)

    def queue_url_for_arn(self, arn: str) -> str:
        for queue in self.queues:
            if queue.arn == arn:
                return queue.url
        raise TemplateError(f"{arn} is not an SQS queue of the template")

    def local_outputs(self, api_base_url: str) -> dict[str, Any]:
        """Outputs with each HTTP API's AWS endpoint replaced by the local API's base URL."""
        outputs: dict[str, Any] = {}
        for name, value in self.outputs.items():
            local = value
            for api in self.apis:
                if isinstance(value, str) and value.startswith(api.endpoint):
                    local = api_base_url.rstrip("/") + value[len(api.endpoint) :]
            outputs[name] = local
        return outputs


def merge_globals(global_values: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (the resource wins), lists add up, scalars are replaced."""
    merged: dict[str, Any] = copy.deepcopy(dict(global_values))
    for key, value in own.items():
        if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            if _is_intrinsic(value) or _is_intrinsic(merged[key]):
                merged[key] = copy.deepcopy(value)
            else:
                merged[key] = merge_globals(merged[key], value)
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *copy.deepcopy(value)]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def read_stack(
    template_path: Path,
    *,
    parameters: Mapping[str, str] | None = None,
    pseudo_parameters: Mapping[str, str] | None = None,
    aws_endpoint_url: str = "http://127.0.0.1:5000",
) -> StackModel:
    """Read ``template_path`` into the local stack's model (paths relative to its folder)."""
    template = load_template(template_path)
    root = template_path.resolve().parent
    resolver = Resolver(
        template,
        parameters=parameters,
        pseudo_parameters=pseudo_parameters,
        aws_endpoint_url=aws_endpoint_url,
    )
    resources = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resolver.is_enabled(resource)
    }
    function_globals = (template.get("Globals", {}) or {}).get("Function", {}) or {}
    functions = tuple(
        _function(
            resolver, root, logical_id, merge_globals(function_globals, r.get("Properties", {}))
        )
        for logical_id, r in resources.items()
        if r["Type"] in FUNCTION_TYPES
    )
    apis = _apis(resolver, resources, functions)
    outputs = {
        name: resolver.resolve(output["Value"])
        for name, output in (template.get("Outputs", {}) or {}).items()
        if resolver.is_enabled(output)
    }

    def specs[T](
        kind: str, build: Callable[[Resolver, str, Mapping[str, Any]], T]
    ) -> tuple[T, ...]:
        return tuple(build(resolver, i, r) for i, r in resources.items() if r["Type"] == kind)

    return StackModel(
        root=root,
        resolver=resolver,
        functions=functions,
        buckets=specs("AWS::S3::Bucket", _bucket),
        tables=specs("AWS::DynamoDB::Table", _table),
        topics=specs("AWS::SNS::Topic", _topic),
        queues=specs("AWS::SQS::Queue", _queue),
        apis=apis,
        outputs=outputs,
    )


def _function(
    resolver: Resolver, root: Path, logical_id: str, props: dict[str, Any]
) -> FunctionSpec:
    physical = resolver.physical(logical_id)
    package_type = resolver.resolve(props.get("PackageType", "Zip"))
    if package_type != "Zip" or "InlineCode" in props:
        raise TemplateError(f"{logical_id}: only Zip functions with a local CodeUri run locally")
    code_uri = resolver.resolve(props.get("CodeUri"))
    if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
        raise TemplateError(f"{logical_id}: CodeUri must be a local folder, got {code_uri!r}")
    environment = resolver.resolve((props.get("Environment", {}) or {}).get("Variables", {})) or {}
    invoke_config = resolver.resolve(props.get("EventInvokeConfig", {})) or {}
    on_failure = (invoke_config.get("DestinationConfig", {}) or {}).get("OnFailure", {}) or {}
    dead_letter = resolver.resolve(props.get("DeadLetterQueue", {})) or {}
    on_failure_arn = on_failure.get("Destination") or dead_letter.get("TargetArn")
    rules: list[EventRule] = []
    routes: list[HttpRoute] = []
    for event_id, event in (props.get("Events", {}) or {}).items():
        kind = event.get("Type")
        event_props = event.get("Properties", {}) or {}
        if kind == "EventBridgeRule":
            rules.append(_rule(resolver, logical_id, event_id, event_props))
        elif kind == "HttpApi":
            routes.append(_route(resolver, logical_id, event_id, event_props))
    return FunctionSpec(
        logical_id=logical_id,
        name=str(physical.ref),
        arn=str(physical.attributes["Arn"]),
        code_uri=(root / code_uri).resolve(),
        handler=str(resolver.resolve(props.get("Handler"))),
        runtime=str(resolver.resolve(props.get("Runtime", ""))),
        memory_size=int(resolver.resolve(props.get("MemorySize", 128))),
        timeout=int(resolver.resolve(props.get("Timeout", 3))),
        layers=tuple(
            _layer_path(resolver, root, logical_id, layer) for layer in props.get("Layers", [])
        ),
        environment={str(k): _scalar_text(v) for k, v in environment.items()},
        max_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES)),
        on_failure_arn=str(on_failure_arn) if on_failure_arn else None,
        rules=tuple(rules),
        routes=tuple(routes),
    )


def _layer_path(resolver: Resolver, root: Path, function_id: str, layer: Any) -> Path:
    """A layer given as ``!Ref`` to a layer of this template runs from its ContentUri folder."""
    if isinstance(layer, dict) and set(layer) == {"Ref"}:
        resource = resolver.resources.get(str(layer["Ref"]), {})
        if resource.get("Type") in LAYER_TYPES:
            props = resource.get("Properties", {}) or {}
            content = resolver.resolve(props.get("ContentUri", props.get("Content")))
            if isinstance(content, str) and not content.startswith("s3://"):
                return (root / content).resolve()
    raise TemplateError(
        f"{function_id}: layer {json.dumps(layer)} is not a local layer of this template"
    )


def _rule(
    resolver: Resolver, function_id: str, event_id: str, props: Mapping[str, Any]
) -> EventRule:
    physical = resolver.physical(f"{function_id}{event_id}")
    retry = resolver.resolve(props.get("RetryPolicy", {})) or {}
    dead_letter = resolver.resolve(props.get("DeadLetterConfig", {})) or {}
    bus = resolver.resolve(props.get("EventBusName", "default"))
    retries = retry.get("MaximumRetryAttempts")
    return EventRule(
        function_id=function_id,
        event_id=event_id,
        rule_name=str(resolver.resolve(props.get("RuleName", physical.ref))),
        rule_arn=str(physical.attributes["Arn"]),
        event_bus=str(bus),
        pattern=resolver.resolve(props["Pattern"]),
        retry_attempts=int(retries) if retries is not None else None,
        dead_letter_arn=dead_letter.get("Arn"),
    )


def _route(
    resolver: Resolver, function_id: str, event_id: str, props: Mapping[str, Any]
) -> HttpRoute:
    if "Auth" in props:
        raise TemplateError(
            f"{function_id}.{event_id}: a route's own Auth is not supported locally; every route "
            "is under its API's DefaultAuthorizer"
        )
    api = props.get("ApiId", {"Ref": IMPLICIT_HTTP_API})
    api_logical = api["Ref"] if isinstance(api, dict) and "Ref" in api else str(api)
    path = resolver.resolve(props.get("Path"))
    method = resolver.resolve(props.get("Method"))
    if path is None and method is None:
        path, method = "$default", "ANY"
    method = str(method or "ANY").upper()
    if method in ("*", "X-AMAZON-APIGATEWAY-ANY-METHOD"):
        method = "ANY"
    return HttpRoute(
        function_id=function_id,
        event_id=event_id,
        api_id=str(api_logical),
        method=method,
        path=str(path),
        payload_format_version=str(resolver.resolve(props.get("PayloadFormatVersion", "2.0"))),
    )


def _apis(
    resolver: Resolver, resources: Mapping[str, Any], functions: tuple[FunctionSpec, ...]
) -> tuple[HttpApiSpec, ...]:
    used = {route.api_id for function in functions for route in function.routes}
    declared = {i for i, r in resources.items() if r["Type"] == HTTP_API_TYPE}
    apis = []
    for logical_id in sorted(used | declared):
        physical = resolver.physical(logical_id)
        properties = (resources.get(logical_id) or {}).get("Properties", {}) or {}
        apis.append(
            HttpApiSpec(
                logical_id,
                str(physical.ref),
                str(physical.attributes["ApiEndpoint"]),
                _api_auth(logical_id, resolver.resolve(properties.get("Auth")) or {}),
            )
        )
    return tuple(apis)


def _api_auth(logical_id: str, auth: Mapping[str, Any]) -> ApiAuthSpec:
    """SAM's ``Auth`` of an HttpApi (intrinsics resolved) as the local API enforces it."""
    default = auth.get("DefaultAuthorizer")
    if default is None:
        return ApiAuthSpec("NONE")
    if default == "AWS_IAM":
        if auth.get("EnableIamAuthorizer") is not True:
            raise TemplateError(
                f"{logical_id}: DefaultAuthorizer AWS_IAM needs EnableIamAuthorizer"
            )
        return ApiAuthSpec("IAM")
    authorizer = (auth.get("Authorizers") or {}).get(default) or {}
    jwt = authorizer.get("JwtConfiguration")
    if not jwt:
        raise TemplateError(
            f"{logical_id}: the local stack enforces AWS_IAM and JWT authorizers; "
            f"DefaultAuthorizer {default!r} is neither"
        )
    issuer = str(jwt.get("issuer") or "")
    audiences = tuple(str(a) for a in (jwt.get("audience") or []) if str(a))
    if not issuer or not audiences:
        raise TemplateError(f"{logical_id}: a JWT authorizer needs an issuer and an audience")
    source = str(authorizer.get("IdentitySource", "$request.header.Authorization"))
    if source != "$request.header.Authorization":
        raise TemplateError(
            f"{logical_id}: the local stack reads tokens from the Authorization header only"
        )
    return ApiAuthSpec("JWT", issuer, audiences, source)


def _bucket(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> BucketSpec:
    props = resolver.resolve(resource.get("Properties", {})) or {}
    notifications = props.get("NotificationConfiguration", {}) or {}
    eventbridge = notifications.get("EventBridgeConfiguration", {}) or {}
    enabled = eventbridge.get("EventBridgeEnabled", bool(eventbridge))
    return BucketSpec(
        logical_id=logical_id,
        name=str(resolver.physical(logical_id).ref),
        versioning=(props.get("VersioningConfiguration", {}) or {}).get("Status") == "Enabled",
        eventbridge=enabled in (True, "true"),
    )


_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
)


def _table(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> TableSpec:
    props = resolver.resolve(resource.get("Properties", {})) or {}
    name = str(resolver.physical(logical_id).ref)
    arguments: dict[str, Any] = {"TableName": name}
    arguments.update({key: _numbers(props[key]) for key in _TABLE_KEYS if key in props})
    arguments.setdefault("BillingMode", "PROVISIONED")
    if arguments["BillingMode"] == "PROVISIONED":
        units = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        arguments.setdefault("ProvisionedThroughput", units)
        for index in arguments.get("GlobalSecondaryIndexes", []):
            index.setdefault("ProvisionedThroughput", units)
    if "StreamSpecification" in arguments:
        arguments["StreamSpecification"] = {
            "StreamEnabled": True,
            **arguments["StreamSpecification"],
        }
    ttl = props.get("TimeToLiveSpecification", {}) or {}
    enabled = ttl.get("Enabled") in (True, "true")
    return TableSpec(logical_id, name, arguments, ttl.get("AttributeName") if enabled else None)


def _numbers(value: Any) -> Any:
    """Capacity units come out of YAML or parameters as text; the API wants integers."""
    if isinstance(value, dict):
        return {k: int(v) if k.endswith("CapacityUnits") else _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


_TOPIC_ATTRIBUTES = ("DisplayName", "FifoTopic", "ContentBasedDeduplication")


def _topic(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> TopicSpec:
    props = resolver.resolve(resource.get("Properties", {})) or {}
    physical = resolver.physical(logical_id)
    attributes = {k: _scalar_text(props[k]) for k in _TOPIC_ATTRIBUTES if k in props}
    return TopicSpec(
        logical_id, str(physical.attributes["TopicName"]), str(physical.ref), attributes
    )


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
)


def _queue(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> QueueSpec:
    props = resolver.resolve(resource.get("Properties", {})) or {}
    physical = resolver.physical(logical_id)
    attributes = {k: _scalar_text(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return QueueSpec(
        logical_id=logical_id,
        name=str(physical.attributes["QueueName"]),
        url=str(physical.ref),
        arn=str(physical.attributes["Arn"]),
        attributes=attributes,
    )
