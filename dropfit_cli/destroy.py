"""Remove every SageMaker resource a Dropfit stack created, before `sam delete` removes the stack.

The stack's functions create SageMaker resources at run time, outside CloudFormation: training
jobs, models, endpoint configs and one serverless endpoint per model. `sam delete` knows none of
them. :func:`destroy` finds them through the stack itself: its ``SageMakerNamePrefix`` output
and its table of models. A resource is the stack's when its name is the endpoint of one of those
models (``<prefix>-<model>``) or a run of one (``<prefix>-<model>-<12 hex digits>``), so
another stack that shares the prefix keeps the resources of its own models.

Training jobs cannot be deleted: those still running are stopped. The bucket and the table are
retained by ``sam delete`` (they hold the uploads and the run history); :attr:`DestroySummary.
next_steps` says how to remove them too. :func:`sweep` does the same for a stack whose outputs are
at hand (the local stack's ``outputs.json``). ``dropfit destroy`` is the command. Only botocore is
imported (the CLI starts fast).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from botocore.session import get_session

DEFAULT_NAME_PREFIX = "dropfit"  # template.yaml's NamePrefix default
DIGEST = "[0-9a-f]{12}"  # dropfit.names.DIGEST_LENGTH hex digits


class DestroyError(RuntimeError):
    """The stack cannot be read (missing, or without the outputs a Dropfit stack has)."""


@dataclass(frozen=True)
class Clients:
    cloudformation: Any  # None for a stack whose outputs are at hand (see sweep)
    sagemaker: Any
    dynamodb: Any

    @classmethod
    def create(cls, region: str | None = None) -> Clients:
        session = get_session()
        make = session.create_client
        return cls(
            cloudformation=make("cloudformation", region_name=region),
            sagemaker=make("sagemaker", region_name=region),
            dynamodb=make("dynamodb", region_name=region),
        )


@dataclass
class DestroySummary:
    stack: str
    region: str
    name_prefix: str
    models: list[str]
    stopped_training_jobs: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    sagemaker_models: list[str] = field(default_factory=list)
    bucket: str | None = None
    table: str | None = None
    local: bool = False  # the local stack: nothing to `sam delete`

    @property
    def next_steps(self) -> list[str]:
        if self.local:
            return [
                "Stop the local stack (Ctrl-C where `dropfit up` runs) when you are done: its "
                "bucket, table and SageMaker stop with it."
            ]
        steps = [f"sam delete --stack-name {self.stack} --region {self.region}"]
        if self.bucket:
            steps.append(
                f"The bucket {self.bucket} is retained (uploads, datasets, models): to remove "
                f"it, delete every object version in it, then the bucket "
                f"(aws s3api delete-bucket --bucket {self.bucket})."
            )
        if self.table:
            steps.append(
                f"The table {self.table} is retained (run history): "
                f"aws dynamodb delete-table --table-name {self.table} --region {self.region}"
            )
        return steps

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "name_prefix": self.name_prefix,
            "models": self.models,
            "stopped_training_jobs": self.stopped_training_jobs,
            "endpoints": self.endpoints,
            "endpoint_configs": self.endpoint_configs,
            "sagemaker_models": self.sagemaker_models,
            "next_steps": self.next_steps,
        }


def owned_by(prefix: str, models: Iterable[str]) -> Callable[[str], bool]:
    """Whether a SageMaker resource name is the endpoint or a run of one of ``models``."""
    names = sorted(models, key=len, reverse=True)
    if not names:
        return lambda name: False
    alternatives = "|".join(re.escape(model) for model in names)
    pattern = re.compile(rf"{re.escape(prefix)}-(?:{alternatives})(?:-{DIGEST})?")
    return lambda name: pattern.fullmatch(name) is not None


def destroy(
    stack_name: str,
    region: str | None = None,
    *,
    clients: Clients | None = None,
    dry_run: bool = False,
) -> DestroySummary:
    """Stop the stack's running training jobs, delete its endpoints, endpoint configs and
    SageMaker models; with ``dry_run``, only list them. Idempotent: run it again at will."""
    clients = clients or Clients.create(region)
    stack = _describe_stack(clients.cloudformation, stack_name)
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if not outputs.get("SageMakerNamePrefix"):
        # The prefix the functions give SageMaker names is the stack's output, else the parameter
        outputs["SageMakerNamePrefix"] = parameters.get("NamePrefix") or DEFAULT_NAME_PREFIX
    return sweep(stack_name, outputs, clients, dry_run=dry_run)


def sweep(
    stack_name: str,
    outputs: dict[str, Any],
    clients: Clients,
    *,
    dry_run: bool = False,
    local: bool = False,
) -> DestroySummary:
    """:func:`destroy` for a stack whose outputs are known: ``TableName``, ``BucketName`` and
    ``SageMakerNamePrefix``."""
    if "TableName" not in outputs:
        raise DestroyError(f"Stack {stack_name} has no TableName output: is it a Dropfit stack?")
    prefix = str(outputs.get("SageMakerNamePrefix") or DEFAULT_NAME_PREFIX)
    models = _models(clients.dynamodb, outputs["TableName"])
    ours = owned_by(prefix, models)
    summary = DestroySummary(
        stack=stack_name,
        region=clients.sagemaker.meta.region_name,
        name_prefix=prefix,
        models=models,
        bucket=outputs.get("BucketName"),
        table=outputs["TableName"],
        local=local,
    )
    sagemaker = clients.sagemaker

    def act(call: Callable[..., Any], **params: str) -> None:
        if dry_run:
            return
        try:
            call(**params)
        except ClientError as error:
            # Gone already (a concurrent deletion, or a job that ended): nothing to do.
            if error.response.get("Error", {}).get("Code") != "ValidationException":
                raise

    search = f"{prefix}-"
    for job in _names(
        sagemaker,
        "list_training_jobs",
        "TrainingJobSummaries",
        "TrainingJobName",
        NameContains=search,
        StatusEquals="InProgress",
    ):
        if ours(job):
            act(sagemaker.stop_training_job, TrainingJobName=job)
            summary.stopped_training_jobs.append(job)
    # Endpoints first: SageMaker asks that a config in use by a live endpoint is not deleted.
    for endpoint in _names(
        sagemaker, "list_endpoints", "Endpoints", "EndpointName", NameContains=search
    ):
        if ours(endpoint):
            act(sagemaker.delete_endpoint, EndpointName=endpoint)
            summary.endpoints.append(endpoint)
    for config in _names(
        sagemaker,
        "list_endpoint_configs",
        "EndpointConfigs",
        "EndpointConfigName",
        NameContains=search,
    ):
        if ours(config):
            act(sagemaker.delete_endpoint_config, EndpointConfigName=config)
            summary.endpoint_configs.append(config)
    for model in _names(sagemaker, "list_models", "Models", "ModelName", NameContains=search):
        if ours(model):
            act(sagemaker.delete_model, ModelName=model)
            summary.sagemaker_models.append(model)
    return summary


def _describe_stack(cloudformation: Any, stack_name: str) -> dict[str, Any]:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise DestroyError(f"No stack named {stack_name}: {error}") from None
        raise
    return dict(stack)


def _models(dynamodb: Any, table: str) -> list[str]:
    """Every model the table records (``pk = "MODEL"``, ``sk`` = the model's name)."""
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "MODEL"}},
        ProjectionExpression="sk",
    )
    return sorted(item["sk"]["S"] for page in pages for item in page["Items"])


def _names(client: Any, operation: str, key: str, name: str, **params: str) -> Iterator[str]:
    for page in client.get_paginator(operation).paginate(**params):
        for summary in page[key]:
            yield summary[name]


def describe(summary: DestroySummary, dry_run: bool = False) -> str:
    """The summary for a human: what went (or would go), then what to run next."""
    verb = "would delete" if dry_run else "deleted"
    lines = [
        f"Stack {summary.stack} ({summary.region}), prefix {summary.name_prefix}, "
        f"{len(summary.models)} model(s).",
        f"  {'would stop' if dry_run else 'stopped'} training jobs: "
        f"{', '.join(summary.stopped_training_jobs) or 'none'}",
        f"  {verb} endpoints: {', '.join(summary.endpoints) or 'none'}",
        f"  {verb} endpoint configs: {len(summary.endpoint_configs)}",
        f"  {verb} SageMaker models: {len(summary.sagemaker_models)}",
        "Next:",
        *(f"  {step}" for step in summary.next_steps),
    ]
    return "\n".join(lines)
