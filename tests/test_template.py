"""template.yaml: validity, wiring, least privilege, and agreement with the code, docs and events.

Everything here runs offline. The SAM transform runs in-process (``tests/template_utils.py``);
``sam build`` downloads wheels from PyPI and is marked ``slow``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dropfit import names, settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from bench.package import python313, sam_build

# smdebug-rulesconfig (a sagemaker-core dependency) installs a top-level "tests" package, which
# shadows this folder unless it has an __init__.py; import the helper either way.
try:
    from tests.template_utils import (
        EXAMPLE_STACK_ID,
        REGION,
        ROOT,
        load_template,
        translated_template,
    )
except ModuleNotFoundError:
    from template_utils import (  # type: ignore[no-redef]
        EXAMPLE_STACK_ID,
        REGION,
        ROOT,
        load_template,
        translated_template,
    )

EVENTS = ROOT / "events"
SAM = Path(sys.executable).with_name("sam")
# The variables each function's settings class reads (dropfit.settings).
FUNCTIONS = {
    "FormatFunction": settings.FormatSettings.env_names(),
    "DeployFunction": settings.DeploySettings.env_names(),
    "PredictFunction": settings.PredictSettings.env_names(),
    "ReportFunction": settings.ReportSettings.env_names(),
    "ManageFunction": settings.ManageSettings.env_names(),
}
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
# Read by boto3 itself; declared only under the UseLocalStack condition (sam local -> local stack).
LOCAL_ENDPOINT_VARIABLES = {
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
}
# IAM actions that support no resource-level permission: "*" is the only possible Resource.
ACTIONS_WITHOUT_RESOURCES = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# What SAM attaches to every function role (logs, and X-Ray because Tracing is Active).
SAM_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
EXAMPLE_BUCKET = "dropfit-data-example"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translated_template()


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def offline_env(**extra: str) -> dict[str, str]:
    """The test environment without any AWS credentials or profile, SAM telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0", **extra}


# ------------------------------------------------------------------ resolving the template
# A small evaluator for the intrinsics the template uses, with parameters at their defaults. It
# returns None for what only CloudFormation knows (resource names and attributes).


def resolve(value: Any, template: dict[str, Any], region: str = REGION, **refs: str) -> Any:
    if isinstance(value, list):
        return [resolve(v, template, region, **refs) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: resolve(v, template, region, **refs) for k, v in value.items()}
    ((function, argument),) = value.items()
    if function == "Ref":
        if argument in refs:
            return refs[argument]
        if argument == "AWS::Region":
            return region
        if argument == "AWS::StackId":
            return EXAMPLE_STACK_ID
        parameter = template["Parameters"].get(argument)
        return None if parameter is None else str(parameter["Default"])
    if function == "Fn::FindInMap":
        mapping, first, second = (resolve(a, template, region, **refs) for a in argument)
        return template["Mappings"][mapping][first][second]
    if function == "Fn::Select":
        index, items = (resolve(a, template, region, **refs) for a in argument)
        return None if items is None else items[int(index)]
    if function == "Fn::Split":
        separator, text = (resolve(a, template, region, **refs) for a in argument)
        return None if text is None else str(text).split(separator)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: resolve(v, template, region, **refs) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            found = (
                values[name] if name in values else resolve({"Ref": name}, template, region, **refs)
            )
            if found is None:
                raise LookupError(name)
            return str(found)

        try:
            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        except LookupError:
            return None
    return {function: resolve(argument, template, region, **refs)}


# ------------------------------------------------------------------ EventBridge pattern matching


def _matches_value(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(value == condition)
    if not isinstance(value, str):
        return False
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    if "suffix" in condition:
        return value.endswith(condition["suffix"])
    if "wildcard" in condition:
        regex = ".*".join(re.escape(part) for part in condition["wildcard"].split("*"))
        return re.fullmatch(regex, value, re.S) is not None
    raise NotImplementedError(f"pattern operator {condition} is not supported by this test")


def event_matches(event: dict[str, Any], pattern: dict[str, Any]) -> bool:
    """EventBridge semantics for the operators the template uses (AND over fields, OR in lists)."""
    for field, condition in pattern.items():
        if field not in event:
            return False
        if isinstance(condition, dict):
            if not isinstance(event[field], dict) or not event_matches(event[field], condition):
                return False
        elif not any(
            _matches_value(value, c) for value in as_list(event[field]) for c in condition
        ):
            return False
    return True


def rule_pattern(template: dict[str, Any], function: str, event_name: str) -> dict[str, Any]:
    source = template["Resources"][function]["Properties"]["Events"][event_name]
    pattern: dict[str, Any] = resolve(
        source["Properties"]["Pattern"], template, DataBucket=EXAMPLE_BUCKET
    )
    return pattern


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


# ------------------------------------------------------------------ validity


def test_sam_validate_lint_passes_offline() -> None:
    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template-file", str(ROOT / "template.yaml")],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_translated_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    from cfnlint.api import lint

    findings = lint(json.dumps(translated), regions=[REGION])
    assert [str(f) for f in findings] == []


def test_knn_image_mapping_matches_the_sagemaker_sdk_for_every_region(
    template: dict[str, Any],
) -> None:
    generator = _load_generator()
    expected = generator.knn_image_uris()
    mapped = {region: entry["Uri"] for region, entry in template["Mappings"]["KnnImage"].items()}
    assert sorted(mapped) == sorted(expected), "regions differ from the SDK's k-NN config"
    assert mapped == expected
    assert mapped["cn-north-1"].endswith(".amazonaws.com.cn/knn:1")


def test_knn_image_generator_reports_no_drift() -> None:
    assert _load_generator().main(["--check"]) == 0


def test_sklearn_processing_image_mapping_matches_the_sagemaker_sdk_for_every_region(
    template: dict[str, Any],
) -> None:
    generator = _load_generator("gen_sklearn_image_map")
    expected = generator.sklearn_image_uris()
    mapping = template["Mappings"]["SklearnProcessingImage"]
    mapped = {region: entry["Uri"] for region, entry in mapping.items()}
    assert mapped == expected
    assert set(mapped) >= set(template["Mappings"]["KnnImage"]), "a k-NN region lacks the image"
    assert mapped["us-east-1"].endswith("/sagemaker-scikit-learn:1.4-2-py312-cpu-py3")


def test_sklearn_image_generator_reports_no_drift() -> None:
    assert _load_generator("gen_sklearn_image_map").main(["--check"]) == 0


def _load_generator(name: str = "gen_knn_image_map") -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_name_prefix_leaves_room_for_the_longest_sagemaker_name(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["NamePrefix"]["AllowedPattern"]
    longest_prefix = 1 + int(re.search(r"\{0,(\d+)\}\$$", pattern).group(1))  # type: ignore[union-attr]
    stack_prefix = f"{'p' * longest_prefix}-{'0' * 8}"  # NAME_PREFIX: NamePrefix-<stack id>
    assert len(stack_prefix) <= names.PREFIX_MAX
    longest_job = names.job_name(
        stack_prefix, "m" * names.MODEL_NAME_MAX, "d" * names.DIGEST_LENGTH
    )
    assert len(longest_job) <= 63
    assert re.fullmatch(pattern, template["Parameters"]["NamePrefix"]["Default"])


# ------------------------------------------------------------------ functions and their code


def test_every_handler_resolves_to_a_lambda_handler_in_its_app_py(
    template: dict[str, Any],
) -> None:
    default_handler = template["Globals"]["Function"].get("Handler")
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        module, _, attribute = properties.get("Handler", default_handler).rpartition(".")
        source = ROOT / properties["CodeUri"] / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{name}: {source.relative_to(ROOT)} does not exist"
        tree = ast.parse(source.read_text(), filename=str(source))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        } | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert attribute in defined, f"{name}: {source.relative_to(ROOT)} defines no {attribute}"


def test_functions_run_python313_on_arm64_with_the_shared_layer(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "SharedLayer"}]
    layer = template["Resources"]["SharedLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert set(resources_of_type(template, "AWS::Serverless::Function")) == set(FUNCTIONS)


def function_environment(template: dict[str, Any], name: str) -> dict[str, Any]:
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    properties = template["Resources"][name]["Properties"]
    variables.update(properties.get("Environment", {}).get("Variables", {}))
    return variables


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_gets_exactly_the_variables_its_settings_read(
    template: dict[str, Any], name: str
) -> None:
    environment = function_environment(template, name)
    assert set(environment) == POWERTOOLS_VARIABLES | LOCAL_ENDPOINT_VARIABLES | set(
        FUNCTIONS[name]
    )
    for variable in LOCAL_ENDPOINT_VARIABLES:  # absent on AWS: only the local stack sets them
        assert environment[variable]["Fn::If"][0] == "UseLocalStack"
        assert environment[variable]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    service = name.removesuffix("Function").lower()
    assert environment["POWERTOOLS_SERVICE_NAME"] == f"dropfit-{service}"


def test_every_variable_is_documented_in_the_design_and_the_reverse(
    template: dict[str, Any],
) -> None:
    design = (ROOT / "docs" / "design.md").read_text()
    table = design.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = {
        variable
        for line in table.splitlines()
        if line.startswith("| `")
        for variable in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    used = {v for name in FUNCTIONS for v in function_environment(template, name)}
    assert used == documented


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_env_json_sets_the_template_variables_with_consistent_values(
    template: dict[str, Any], name: str
) -> None:
    example = json.loads((EVENTS / "env.json").read_text())[name]
    environment = function_environment(template, name)
    for variable in LOCAL_ENDPOINT_VARIABLES:  # the local stack writes its own (.local/)
        environment.pop(variable)
    assert set(example) == set(environment)
    region = "eu-west-1"  # the region of the example ARNs in env.json
    for variable, value in environment.items():
        expected = resolve(value, template, region, NamePrefix="dropfit")
        if isinstance(expected, str):
            assert example[variable] == expected, variable


def test_only_the_format_function_pays_for_pandas_and_the_report_function_for_matplotlib() -> None:
    layer = {r.name for r in _requirements(ROOT / "layers/shared/requirements.txt")}
    assert {"aws-lambda-powertools", "pydantic", "aws-xray-sdk"} <= layer
    assert not {"pandas", "numpy", "matplotlib"} & layer
    assert {r.name for r in _requirements(ROOT / "functions/format/requirements.txt")} == {
        "pandas",
        "numpy",
    }
    report = {r.name for r in _requirements(ROOT / "functions/report/requirements.txt")}
    assert {"matplotlib", "numpy"} <= report
    assert "pandas" not in report
    for function in ("deploy", "predict"):
        assert _requirements(ROOT / f"functions/{function}/requirements.txt") == []


def test_deployed_requirements_are_pinned_to_the_lock_file() -> None:
    """sam build installs exactly the versions uv.lock tested (scripts/pin_requirements.py)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/pin_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (
        "layers/shared/requirements.txt",
        "functions/format/requirements.txt",
        "functions/report/requirements.txt",
    ):
        assert all(str(r.specifier).startswith("==") for r in _requirements(ROOT / path))


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


# ------------------------------------------------------------------ events and routes


@pytest.mark.parametrize(
    ("function", "rule", "sample"),
    [
        ("FormatFunction", "ObjectCreated", "s3-object-created.json"),
        ("DeployFunction", "TrainingStateChange", "training-completed.json"),
        ("DeployFunction", "TrainingStateChange", "training-failed.json"),
        ("DeployFunction", "EndpointStateChange", "endpoint-in-service.json"),
        ("ReportFunction", "EndpointInService", "endpoint-in-service.json"),
    ],
)
def test_sample_event_matches_its_rule(
    template: dict[str, Any], function: str, rule: str, sample: str
) -> None:
    assert event_matches(load_event(sample), rule_pattern(template, function, rule))


@pytest.mark.parametrize(
    ("key", "starts_a_run"),
    [
        ("incoming/iris.csv", True),
        ("incoming/Team A/Wine Quality.CSV", True),
        *((f"incoming/x.{ext}", True) for ext in ("csV", "cSv", "cSV", "Csv", "CsV", "CSv")),
        ("incoming/x.csvx", False),
        ("incoming/notes.txt", False),
        ("incoming/iris.csv.bak", False),
        ("datasets/dropfit-iris-0123456789ab/train/train.csv", False),
        ("iris.csv", False),
    ],
)
def test_only_csv_uploads_under_incoming_start_a_run(
    template: dict[str, Any], key: str, starts_a_run: bool
) -> None:
    event = load_event("s3-object-created.json")
    event["detail"]["object"]["key"] = key
    pattern = rule_pattern(template, "FormatFunction", "ObjectCreated")
    assert event_matches(event, pattern) is starts_a_run


def test_uploads_to_another_bucket_are_ignored(template: dict[str, Any]) -> None:
    event = load_event("s3-object-created.json")
    event["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert not event_matches(event, rule_pattern(template, "FormatFunction", "ObjectCreated"))


@pytest.mark.parametrize(
    ("job", "status", "handled"),
    [
        ("dropfit-1c2fa620-iris-0123456789ab", "Completed", True),
        ("dropfit-1c2fa620-iris-0123456789ab", "Stopped", True),
        ("dropfit-1c2fa620-iris-0123456789ab", "InProgress", False),
        ("other-team-job", "Completed", False),
        ("dropfit-0a0b0c0d-iris-0123456789ab", "Completed", False),  # another stack's
        ("dropfit-iris-0123456789ab", "Completed", False),  # a stack without a stack id
    ],
)
def test_deploy_reacts_to_our_finished_training_jobs_only(
    template: dict[str, Any], job: str, status: str, handled: bool
) -> None:
    event = load_event("training-completed.json")
    event["detail"].update(TrainingJobName=job, TrainingJobStatus=status)
    pattern = rule_pattern(template, "DeployFunction", "TrainingStateChange")
    assert event_matches(event, pattern) is handled


@pytest.mark.parametrize(
    ("status", "handled"),
    [("IN_SERVICE", True), ("FAILED", True), ("InService", True), ("UPDATING", False)],
)
def test_deploy_reacts_to_settled_endpoints(
    template: dict[str, Any], status: str, handled: bool
) -> None:
    event = load_event("endpoint-in-service.json")
    event["detail"]["EndpointStatus"] = status
    pattern = rule_pattern(template, "DeployFunction", "EndpointStateChange")
    assert event_matches(event, pattern) is handled


@pytest.mark.parametrize(
    ("endpoint", "status", "handled"),
    [
        ("dropfit-1c2fa620-iris", "IN_SERVICE", True),
        ("dropfit-1c2fa620-iris", "InService", True),
        ("dropfit-1c2fa620-iris", "FAILED", False),
        ("dropfit-1c2fa620-iris", "UPDATING", False),
        ("dropfit-0a0b0c0d-iris", "IN_SERVICE", False),  # another stack's
        ("other-team-endpoint", "IN_SERVICE", False),
    ],
)
def test_reports_are_written_for_our_endpoints_in_service_only(
    template: dict[str, Any], endpoint: str, status: str, handled: bool
) -> None:
    event = load_event("endpoint-in-service.json")
    event["detail"].update(EndpointName=endpoint, EndpointStatus=status)
    pattern = rule_pattern(template, "ReportFunction", "EndpointInService")
    assert event_matches(event, pattern) is handled


@pytest.mark.parametrize(
    ("endpoint", "handled"),
    [
        ("dropfit-1c2fa620-iris", True),
        ("dropfit-0a0b0c0d-iris", False),  # another stack's
        ("dropfit-iris", False),
        ("dropfit1-1c2fa620-iris", False),
    ],
)
def test_deploy_reacts_to_this_stacks_endpoints_only(
    template: dict[str, Any], endpoint: str, handled: bool
) -> None:
    event = load_event("endpoint-in-service.json")
    event["detail"]["EndpointName"] = endpoint
    pattern = rule_pattern(template, "DeployFunction", "EndpointStateChange")
    assert event_matches(event, pattern) is handled


def _stack_id_expression(template: dict[str, Any]) -> Any:
    """How NAME_PREFIX takes the stack id (every other use must be the same expression)."""
    prefix = template["Globals"]["Function"]["Environment"]["Variables"]["NAME_PREFIX"]
    assert prefix["Fn::Sub"][0] == "${NamePrefix}-${StackId}"
    return prefix["Fn::Sub"][1]["StackId"]


def test_the_stack_id_is_the_first_group_of_the_stack_ids_uuid(template: dict[str, Any]) -> None:
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert resolve(environment["NAME_PREFIX"], template) == "dropfit-1c2fa620"
    output = template["Outputs"]["SageMakerNamePrefix"]["Value"]
    assert output == environment["NAME_PREFIX"]
    for function, rule, field in (
        ("DeployFunction", "TrainingStateChange", "TrainingJobName"),
        ("DeployFunction", "EndpointStateChange", "EndpointName"),
        ("ReportFunction", "EndpointInService", "EndpointName"),
    ):
        events = template["Resources"][function]["Properties"]["Events"]
        (matcher,) = events[rule]["Properties"]["Pattern"]["detail"][field]
        assert matcher["prefix"]["Fn::Sub"] == [
            "${NamePrefix}-${StackId}-",
            {"StackId": _stack_id_expression(template)},
        ]


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    prefixes=st.lists(
        st.from_regex(load_template()["Parameters"]["NamePrefix"]["AllowedPattern"]),
        min_size=2,
        max_size=2,
    ),
    ids=st.lists(st.from_regex(r"\A[0-9a-f]{8}\Z"), min_size=2, max_size=2),
    model=st.from_regex(r"\A[a-z0-9](-?[a-z0-9]){0,31}\Z"),
)
def test_no_stacks_prefix_starts_another_stacks_names(
    prefixes: list[str], ids: list[str], model: str
) -> None:
    """The rules and IAM match "{NamePrefix}-{StackId}-": with no "-" in NamePrefix and 8 hex
    digits after it, it starts another stack's names only if both parts are the same."""
    ours = f"{prefixes[0]}-{ids[0]}-"
    theirs = names.endpoint_name(f"{prefixes[1]}-{ids[1]}", model)
    assert theirs.startswith(ours) is (prefixes[0] == prefixes[1] and ids[0] == ids[1])


def test_sample_api_events_use_the_template_routes(template: dict[str, Any]) -> None:
    events = template["Resources"]["PredictFunction"]["Properties"]["Events"].values()
    routes = {f"{e['Properties']['Method']} {e['Properties']['Path']}" for e in events}
    assert routes == {
        "POST /models/{model}/predict",
        "GET /models",
        "GET /models/{model}",
        "GET /models/{model}/report",
    }
    samples = [load_event(p.name) for p in sorted(EVENTS.glob("api-*.json"))]
    assert {s["routeKey"] for s in samples} == routes
    for sample in samples:
        assert sample["version"] == "2.0"
        assert sample["routeKey"] == sample["requestContext"]["routeKey"]
        method, route = sample["routeKey"].split(" ")
        path = route.format(**sample.get("pathParameters", {}))
        assert (sample["requestContext"]["http"]["method"], sample["rawPath"]) == (method, path)


# ------------------------------------------------------------------ failure handling


def test_every_rule_retries_and_dead_letters_into_the_queue(translated: dict[str, Any]) -> None:
    rules = resources_of_type(translated, "AWS::Events::Rule")
    assert len(rules) == 5
    dlq_arn = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for name, rule in rules.items():
        (target,) = rule["Properties"]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": dlq_arn}, name
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, name
    policy = translated["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    allowed = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(allowed, key=str) == sorted(
        ({"Fn::GetAtt": [name, "Arn"]} for name in rules), key=str
    )


def test_failed_async_invocations_end_in_the_queue(translated: dict[str, Any]) -> None:
    configs = resources_of_type(translated, "AWS::Lambda::EventInvokeConfig")
    assert {c["Properties"]["FunctionName"]["Ref"] for c in configs.values()} == {
        "FormatFunction",
        "DeployFunction",
        "ReportFunction",
    }
    for config in configs.values():
        properties = config["Properties"]
        assert properties["MaximumRetryAttempts"] == 2
        assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
        }


@pytest.mark.parametrize("function", ["FormatFunction", "DeployFunction"])
def test_a_function_knows_how_often_lambda_runs_its_events(
    template: dict[str, Any], function: str
) -> None:
    properties = template["Resources"][function]["Properties"]
    retries = int(properties["EventInvokeConfig"]["MaximumRetryAttempts"])

    assert int(properties["Environment"]["Variables"]["ASYNC_ATTEMPTS"]) == 1 + retries


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) == {
        "BucketName",
        "IncomingPrefix",
        "ApiUrl",
        "ApiAuth",
        "ApiInvokeArn",
        "JwtIssuer",
        "TableName",
        "FailureTopicArn",
        "DeadLetterQueueUrl",
        "SageMakerNamePrefix",
    }
    assert resolve(outputs["IncomingPrefix"]["Value"], template) == "incoming/"
    assert (outputs["ApiInvokeArn"]["Condition"], outputs["JwtIssuer"]["Condition"]) == (
        "UseIamAuth",
        "UseJwtAuth",
    )
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }


# ------------------------------------------------------------------ API authorisation

JWT_PARAMETERS = {
    "ApiAuth": "JWT",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
    "JwtAudience": "client-one,client-two",
}


def api_operations(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``METHOD /path`` -> the operation of the HTTP API's OpenAPI body, as SAM generated it."""
    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    return {
        f"{method.upper()} {path}": operation
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
    }


def template_routes(template: dict[str, Any]) -> set[str]:
    return {
        f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
        for function in resources_of_type(template, "AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }


def test_every_route_needs_a_sigv4_signature_by_default(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert template["Parameters"]["ApiAuth"]["Default"] == "IAM"
    operations = api_operations(translated)
    assert set(operations) == template_routes(template)
    for route, operation in operations.items():
        assert operation["security"] == [{"AWS_IAM": []}], route
    schemes = translated["Resources"]["HttpApi"]["Properties"]["Body"]["components"]
    assert schemes["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_jwt_mode_checks_the_issuer_and_audiences_on_every_route(template: dict[str, Any]) -> None:
    translated = translated_template(parameters=JWT_PARAMETERS)
    for route, operation in api_operations(translated).items():
        assert operation["security"] == [{"JwtAuthorizer": []}], route
    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    authorizer = body["components"]["securitySchemes"]["JwtAuthorizer"]
    assert authorizer["x-amazon-apigateway-authorizer"] == {
        "type": "jwt",
        "identitySource": "$request.header.Authorization",
        "jwtConfiguration": {
            "issuer": JWT_PARAMETERS["JwtIssuer"],
            "audience": ["client-one", "client-two"],
        },
    }


def test_jwt_mode_refuses_to_deploy_without_issuer_and_audience(template: dict[str, Any]) -> None:
    rule = template["Rules"]["JwtNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "ApiAuth"}, "JWT"]}
    asserted = [assertion["Assert"] for assertion in rule["Assertions"]]
    assert asserted == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]} for name in ("JwtIssuer", "JwtAudience")
    ]


def test_none_mode_is_an_explicit_opt_in_that_opens_every_route(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ApiAuth"]["AllowedValues"] == ["IAM", "JWT", "NONE"]
    translated = translated_template(parameters={"ApiAuth": "NONE"})
    assert all("security" not in op for op in api_operations(translated).values())


@pytest.mark.parametrize("mode", ["IAM", "JWT", "NONE"])
def test_each_authorisation_mode_translates_and_passes_cfn_lint(mode: str) -> None:
    from cfnlint.api import lint

    parameters = JWT_PARAMETERS if mode == "JWT" else {"ApiAuth": mode}
    findings = lint(json.dumps(translated_template(parameters=parameters)), regions=[REGION])
    assert [str(f) for f in findings] == []


def test_no_route_overrides_the_apis_default_authorizer(template: dict[str, Any]) -> None:
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        for event_name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] == "HttpApi":
                assert "Auth" not in event["Properties"], f"{name}.{event_name}"
                assert event["Properties"].get("ApiId") == {"Ref": "HttpApi"}, event_name


def test_neighbors_are_off_unless_the_stack_parameter_turns_them_on(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["AllowNeighbors"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["false", "true"])
    environment = function_environment(template, "PredictFunction")
    assert environment["ALLOW_NEIGHBORS"] == {"Ref": "AllowNeighbors"}


def test_every_route_keeps_its_throttle(translated: dict[str, Any]) -> None:
    stage = translated["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 50, "ThrottlingRateLimit": 20}


# ------------------------------------------------------------------ security


def iam_statements(translated: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in resources_of_type(translated, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield name, statement


def test_statements_are_scoped_to_resources(translated: dict[str, Any]) -> None:
    for role, statement in iam_statements(translated):
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (role, actions)
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= ACTIONS_WITHOUT_RESOURCES, (role, actions)


def test_metric_data_is_limited_to_sagemaker_namespaces(translated: dict[str, Any]) -> None:
    found = [
        s
        for _, s in iam_statements(translated)
        if "cloudwatch:PutMetricData" in as_list(s["Action"])
    ]
    assert found
    for statement in found:
        assert statement["Condition"] == {
            "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
        }


def test_pass_role_only_passes_the_sagemaker_roles_to_sagemaker(translated: dict[str, Any]) -> None:
    passing: dict[str, set[str]] = {}
    for role, statement in iam_statements(translated):
        if "iam:PassRole" not in as_list(statement["Action"]):
            continue
        passing.setdefault(role, set()).add(statement["Resource"]["Fn::GetAtt"][0])
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }
    # the format function starts training and Processing jobs, each with its own role
    assert passing == {
        "FormatFunctionRole": {"SageMakerExecutionRole", "ProcessingJobRole"},
        "DeployFunctionRole": {"SageMakerExecutionRole"},
    }


def test_function_roles_get_only_sams_managed_policies(translated: dict[str, Any]) -> None:
    for name, role in resources_of_type(translated, "AWS::IAM::Role").items():
        attached = {
            arn.rsplit("/", 1)[-1] for arn in role["Properties"].get("ManagedPolicyArns", [])
        }
        sagemaker_roles = {"SageMakerExecutionRole", "ProcessingJobRole"}
        expected = set() if name in sagemaker_roles else SAM_MANAGED_POLICIES
        assert attached == expected, name


def test_sagemaker_role_is_only_assumable_by_sagemaker(template: dict[str, Any]) -> None:
    trust = template["Resources"]["SageMakerExecutionRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "sagemaker.amazonaws.com"}]


def test_sagemaker_permissions_are_limited_to_this_stacks_names(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    stack_id = _stack_id_expression(template)
    scoped = 0
    for role, statement in iam_statements(translated):
        if not any(a.startswith("sagemaker:") for a in as_list(statement["Action"])):
            continue
        for resource in as_list(statement["Resource"]):
            text, variables = resource["Fn::Sub"]
            assert text.endswith("/${NamePrefix}-${StackId}-*"), (role, resource)
            assert variables == {"StackId": stack_id}, (role, resource)
            scoped += 1
    assert scoped >= 7  # training jobs, models, endpoint configs, endpoints (3 functions)
    (logs,) = [
        statement
        for statement in template["Resources"]["SageMakerExecutionRole"]["Properties"]["Policies"][
            0
        ]["PolicyDocument"]["Statement"]
        if statement["Sid"] == "WriteLogs"
    ]
    endpoint_logs = logs["Resource"][-1]["Fn::Sub"]
    assert endpoint_logs[0].endswith("/aws/sagemaker/Endpoints/${NamePrefix}-${StackId}-*")
    assert endpoint_logs[1] == {"StackId": stack_id}


def test_bucket_denies_plain_http(template: dict[str, Any]) -> None:
    document = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["DataBucket", "Arn"]},
        {"Fn::Sub": "${DataBucket.Arn}/*"},
    ]


def test_bucket_is_private_encrypted_versioned_and_sends_events(template: dict[str, Any]) -> None:
    properties = template["Resources"]["DataBucket"]["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert "BucketName" not in properties


# ------------------------------------------------------------------ sam build


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = python313()
    if python is None:
        pytest.skip("sam build needs a python3.13 with pip on PATH")
    build = tmp_path_factory.mktemp("sam") / "build"
    result = sam_build(build, python, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return build


@pytest.mark.slow
def test_sam_build_builds_every_function_and_the_layer(build_dir: Path) -> None:
    for name in FUNCTIONS:
        assert (build_dir / name / "app.py").is_file(), name
    layer = build_dir / "SharedLayer" / "python"
    assert (layer / "dropfit" / "settings.py").is_file()
    assert (layer / "aws_lambda_powertools").is_dir()
    assert list((build_dir / "FormatFunction" / "numpy").rglob("*aarch64*.so"))
    assert list((build_dir / "ReportFunction" / "matplotlib").rglob("*aarch64*.so"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["PredictFunction", "DeployFunction"])
def test_only_the_format_artifact_carries_pandas(build_dir: Path, name: str) -> None:
    bundled = {p.name for p in (build_dir / name).iterdir()}
    assert not bundled & {"pandas", "numpy"}, name
