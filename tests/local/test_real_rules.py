"""The real template's EventBridge rules, matched by moto as the local stack matches them.

Each rule is put on moto's default bus with its resolved pattern and an SQS target, exactly as
``LocalStack`` creates it; events are then put on the bus and the queue says which matched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dropfit_local.template import EventRule, StackModel, read_stack
from tests.template_utils import ROOT

REGION = "us-east-1"


@pytest.fixture(scope="module")
def real() -> StackModel:
    return read_stack(ROOT / "template.yaml")


@pytest.fixture
def bus() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield boto3.client("events", REGION), boto3.client("sqs", REGION)


def _matches(bus: tuple[Any, Any], rule: EventRule, source: str, kind: str, detail: Any) -> bool:
    events, sqs = bus
    name = f"probe-{rule.event_id}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, EventPattern=json.dumps(rule.pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "probe", "Arn": arn["QueueArn"]}])
    events.put_events(
        Entries=[{"Source": source, "DetailType": kind, "Detail": json.dumps(detail)}]
    )
    received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    events.remove_targets(Rule=name, Ids=["probe"])
    events.delete_rule(Name=name)
    sqs.delete_queue(QueueUrl=url)
    return bool(received)


SPELLINGS = ["csv", "csV", "cSv", "cSV", "Csv", "CsV", "CSv", "CSV"]


@pytest.mark.parametrize(
    ("key", "starts_a_run"),
    [
        *((f"incoming/x.{ext}", True) for ext in SPELLINGS),
        ("incoming/a/Wine Quality.Csv", True),
        ("incoming/x.csvx", False),
        ("incoming/x.txt", False),
        ("datasets/x/run/train/train.csv", False),
        ("x.Csv", False),
    ],
)
def test_every_spelling_of_csv_under_incoming_starts_a_run(
    real: StackModel, bus: tuple[Any, Any], key: str, starts_a_run: bool
) -> None:
    (rule,) = [r for r in real.function("FormatFunction").rules if r.event_id == "ObjectCreated"]
    detail = {"bucket": {"name": real.buckets[0].name}, "object": {"key": key}}

    assert _matches(bus, rule, "aws.s3", "Object Created", detail) is starts_a_run


@pytest.mark.parametrize(
    ("function", "rule_id", "kind", "field"),
    [
        (
            "DeployFunction",
            "TrainingStateChange",
            "SageMaker Training Job State Change",
            "TrainingJobName",
        ),
        (
            "DeployFunction",
            "EndpointStateChange",
            "SageMaker Endpoint State Change",
            "EndpointName",
        ),
        (
            "FormatFunction",
            "ProcessingStateChange",
            "SageMaker Processing Job State Change",
            "ProcessingJobName",
        ),
    ],
)
def test_each_stack_hears_only_its_own_jobs_and_endpoints(
    bus: tuple[Any, Any], function: str, rule_id: str, kind: str, field: str
) -> None:
    """Two stacks in one account: the same template, the same model, other stack names."""
    stacks = [
        read_stack(ROOT / "template.yaml", pseudo_parameters={"AWS::StackName": name})
        for name in ("dropfit-dev", "dropfit-prod")
    ]
    prefixes = [s.function("DeployFunction").environment["NAME_PREFIX"] for s in stacks]
    assert prefixes[0] != prefixes[1]
    status = {
        "TrainingJobStatus": "Completed",
        "EndpointStatus": "IN_SERVICE",
        "ProcessingJobStatus": "Completed",
    }

    for stack in stacks:
        (rule,) = [r for r in stack.function(function).rules if r.event_id == rule_id]
        heard = [
            _matches(bus, rule, "aws.sagemaker", kind, {field: f"{prefix}-iris", **status})
            for prefix in prefixes
        ]
        own = prefixes.index(stack.function("DeployFunction").environment["NAME_PREFIX"])
        assert heard == [i == own for i in range(len(prefixes))]
