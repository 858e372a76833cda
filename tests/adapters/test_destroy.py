"""dropfit destroy: a stack's SageMaker resources (moto), found through its parameters and outputs
(CloudFormation's DescribeStacks, scripted with Stubber: moto would need the whole template)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.stub import Stubber
from click.testing import CliRunner
from dropfit.names import endpoint_name, job_name, source_digest
from dropfit.sagemaker_requests import model_request, serverless_endpoint_config_request
from moto import mock_aws

from dropfit_cli.destroy import Clients, DestroyError, destroy, owned_by, sweep
from dropfit_cli.main import NO_STACK, cli

REGION = "eu-west-1"
STACK = "dropfit"
TABLE = "dropfit-RunsTable-1EXAMPLE"
BUCKET = "dropfit-data-example"
IMAGE = "438346466558.dkr.ecr.eu-west-1.amazonaws.com/knn:1"
ROLE = "arn:aws:iam::123456789012:role/dropfit-SageMakerExecutionRole-1A2B3C"


def _run(model: str, n: int, prefix: str = "dropfit") -> str:
    return job_name(prefix, model, source_digest("bucket", f"incoming/{model}.csv", str(n)))


@pytest.fixture
def clients() -> Iterator[Clients]:
    with mock_aws():
        clients = Clients(
            cloudformation=boto3.client("cloudformation", region_name=REGION),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            dynamodb=boto3.client("dynamodb", region_name=REGION),
        )
        clients.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield clients


def _stack(
    clients: Clients, prefix: str | None = "dropfit", output_prefix: str | None = None
) -> Stubber:
    stub = Stubber(clients.cloudformation)
    parameters = [{"ParameterKey": "NamePrefix", "ParameterValue": prefix}] if prefix else []
    extra = (
        [{"OutputKey": "SageMakerNamePrefix", "OutputValue": output_prefix}]
        if output_prefix
        else []
    )
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": STACK,
                    "CreationTime": "2025-03-14T09:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Parameters": parameters,
                    "Outputs": [
                        {"OutputKey": "TableName", "OutputValue": TABLE},
                        {"OutputKey": "BucketName", "OutputValue": BUCKET},
                        *extra,
                    ],
                }
            ]
        },
        {"StackName": STACK},
    )
    return stub


def _model(clients: Clients, model: str) -> None:
    clients.dynamodb.put_item(
        TableName=TABLE, Item={"pk": {"S": "MODEL"}, "sk": {"S": model}, "model": {"S": model}}
    )


def _deployed(clients: Clients, model: str, runs: int, prefix: str = "dropfit") -> list[str]:
    """``runs`` runs of ``model`` with their SageMaker model and config; the last one serves."""
    sagemaker = clients.sagemaker
    jobs = [_run(model, n, prefix) for n in range(runs)]
    for job in jobs:
        sagemaker.create_model(
            **model_request(
                name=job,
                model=model,
                image_uri=IMAGE,
                artifact_uri=f"s3://{BUCKET}/models/{model}/{job}/output/model.tar.gz",
                role_arn=ROLE,
            )
        )
        sagemaker.create_endpoint_config(
            **serverless_endpoint_config_request(
                name=job, model=model, memory_mb=2048, max_concurrency=5
            )
        )
    sagemaker.create_endpoint(
        EndpointName=endpoint_name(prefix, model), EndpointConfigName=jobs[-1]
    )
    return jobs


def _left(clients: Clients) -> tuple[list[str], list[str], list[str]]:
    sagemaker = clients.sagemaker
    return (
        sorted(e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]),
        sorted(
            c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
        ),
        sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]),
    )


def test_destroy_deletes_the_endpoints_configs_and_models_of_the_stacks_models(
    clients: Clients,
) -> None:
    _model(clients, "iris")
    _model(clients, "wine")
    iris = _deployed(clients, "iris", 3)
    wine = _deployed(clients, "wine", 1)

    with _stack(clients):
        summary = destroy(STACK, clients=clients)

    assert _left(clients) == ([], [], [])
    assert summary.models == ["iris", "wine"]
    assert summary.endpoints == ["dropfit-iris", "dropfit-wine"]
    assert (
        sorted(summary.endpoint_configs) == sorted(summary.sagemaker_models) == sorted(iris + wine)
    )
    assert summary.next_steps[0] == f"sam delete --stack-name {STACK} --region {REGION}"
    assert BUCKET in summary.next_steps[1] and TABLE in summary.next_steps[2]


def test_another_stacks_resources_are_left_alone_even_with_the_same_prefix(
    clients: Clients,
) -> None:
    _model(clients, "iris")
    _deployed(clients, "iris", 1)
    theirs = _deployed(clients, "iris-2", 1)  # a model of another stack, same prefix
    other_prefix = _deployed(clients, "iris", 1, prefix="other")

    with _stack(clients):
        destroy(STACK, clients=clients)

    assert _left(clients) == (
        sorted(["dropfit-iris-2", "other-iris"]),
        sorted(theirs + other_prefix),
        sorted(theirs + other_prefix),
    )


def test_a_dry_run_lists_and_deletes_nothing(clients: Clients) -> None:
    _model(clients, "iris")
    jobs = _deployed(clients, "iris", 2)
    before = _left(clients)

    with _stack(clients):
        summary = destroy(STACK, clients=clients, dry_run=True)

    assert _left(clients) == before
    assert (summary.endpoints, sorted(summary.sagemaker_models)) == (["dropfit-iris"], sorted(jobs))


def test_running_training_jobs_of_the_stack_are_stopped(clients: Clients) -> None:
    _model(clients, "iris")
    job = _run("iris", 1)
    stopped: list[dict[str, Any]] = []
    sagemaker = clients.sagemaker

    def listed(**_: Any) -> tuple[Any, dict[str, Any]]:
        summary = {
            "TrainingJobName": job,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{job}",
            "CreationTime": "2025-03-14T09:00:00Z",
            "TrainingJobStatus": "InProgress",
        }
        foreign = dict(summary, TrainingJobName=_run("wine", 1))  # not a model of the table
        return _ok({"TrainingJobSummaries": [summary, foreign]})

    def stop(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        stopped.append(params)
        return _ok({})

    # moto's jobs complete at once and it has no StopTrainingJob: both answered here
    sagemaker.meta.events.register("before-call.sagemaker.ListTrainingJobs", listed)
    sagemaker.meta.events.register("before-parameter-build.sagemaker.StopTrainingJob", stop)
    sagemaker.meta.events.register("before-call.sagemaker.StopTrainingJob", lambda **_: _ok({}))

    with _stack(clients):
        summary = destroy(STACK, clients=clients)

    assert summary.stopped_training_jobs == [job]
    assert stopped == [{"TrainingJobName": job}]


def _ok(parsed: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    return AWSResponse("https://sagemaker.local/", 200, HTTPHeaders(), None), {
        **parsed,
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def test_a_stack_that_is_not_there_or_not_dropfit_is_named(clients: Clients) -> None:
    with Stubber(clients.cloudformation) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id nope does not exist"
        )
        with pytest.raises(DestroyError, match="No stack named nope"):
            destroy("nope", clients=clients)


def test_ownership_follows_dropfits_own_names() -> None:
    ours = owned_by("dropfit", ["iris", "team-a-wine"])
    digest = source_digest("bucket", "incoming/iris.csv", "v1")

    assert ours(endpoint_name("dropfit", "iris"))
    assert ours(job_name("dropfit", "team-a-wine", digest))
    assert not ours(job_name("dropfit", "iris-2", digest))
    assert not ours(endpoint_name("dropfit", "team-a"))
    assert not ours(job_name("other", "iris", digest))
    assert not owned_by("dropfit", [])("dropfit-iris")


def test_dropfit_destroy_asks_first_then_prints_what_went_and_the_next_steps(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dropfit_cli import destroy as command

    _model(clients, "iris")
    _deployed(clients, "iris", 1)
    monkeypatch.setattr(command.Clients, "create", classmethod(lambda cls, region: clients))
    arguments = ["destroy", "--stack", STACK, "--region", REGION]

    declined = CliRunner().invoke(cli, arguments, input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert _left(clients)[0] == ["dropfit-iris"]
    with _stack(clients):
        done = CliRunner().invoke(cli, [*arguments, "--yes"])

    assert done.exit_code == 0, done.output
    assert "deleted endpoints: dropfit-iris" in done.output
    assert f"sam delete --stack-name {STACK} --region {REGION}" in done.output
    assert _left(clients) == ([], [], [])


def test_dropfit_destroy_dry_run_as_json_lists_and_asks_nothing(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dropfit_cli import destroy as command

    _model(clients, "iris")
    jobs = _deployed(clients, "iris", 2)
    monkeypatch.setattr(command.Clients, "create", classmethod(lambda cls, region: clients))

    with _stack(clients):
        result = CliRunner().invoke(cli, ["destroy", "--stack", STACK, "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert (listed["dry_run"], listed["endpoints"]) == (True, ["dropfit-iris"])
    assert sorted(listed["sagemaker_models"]) == sorted(jobs)
    assert _left(clients)[2] == sorted(jobs)


def test_dropfit_destroy_of_a_stack_that_is_not_there_is_status_3(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dropfit_cli import destroy as command

    monkeypatch.setattr(command.Clients, "create", classmethod(lambda cls, region: clients))
    with Stubber(clients.cloudformation) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id x does not exist"
        )
        result = CliRunner().invoke(cli, ["destroy", "--stack", "nope", "--yes"])

    assert result.exit_code == NO_STACK
    assert "No stack named nope" in result.output


def test_sweep_reads_the_names_from_outputs_at_hand_and_points_a_local_stack_nowhere_else(
    clients: Clients,
) -> None:
    _model(clients, "iris")
    _deployed(clients, "iris", 1, prefix="dropfit-local1")
    outputs = {"TableName": TABLE, "BucketName": BUCKET, "SageMakerNamePrefix": "dropfit-local1"}

    summary = sweep("local", outputs, clients, local=True)

    assert summary.endpoints == ["dropfit-local1-iris"]
    assert _left(clients) == ([], [], [])
    assert not any("sam delete" in step for step in summary.next_steps)


def test_the_stacks_sagemaker_name_prefix_output_wins_over_the_parameter(clients: Clients) -> None:
    _model(clients, "iris")
    _deployed(clients, "iris", 1, prefix="dropfit-a1b2")

    with _stack(clients, prefix="dropfit", output_prefix="dropfit-a1b2"):
        summary = destroy(STACK, clients=clients)

    assert summary.endpoints == ["dropfit-a1b2-iris"]
    assert _left(clients) == ([], [], [])
