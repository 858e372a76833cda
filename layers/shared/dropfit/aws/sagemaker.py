"""SageMaker control plane and runtime, with their errors translated into Dropfit's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from dropfit.errors import ModelInferenceError, ModelNotReady, PayloadTooLarge, Throttled

_THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _is_duplicate(error: ClientError) -> bool:
    """SageMaker says ResourceInUse, or ValidationException '... already existing ...'."""
    code, message = _code(error), _message(error).lower()
    return code == "ResourceInUse" or (code == "ValidationException" and "already exist" in message)


def _is_not_found(error: ClientError) -> bool:
    message = _message(error).lower()
    return _code(error) in {"ValidationException", "ValidationError", "ResourceNotFound"} and (
        "could not find" in message or "not found" in message
    )


@dataclass(frozen=True, slots=True)
class EndpointState:
    name: str
    # Creating | Updating | SystemUpdating | RollingBack | InService | Deleting | Failed | ...
    status: str
    config_name: str | None
    failure_reason: str | None


class SageMakerControl:
    def __init__(self, client: Any) -> None:
        self.client = client

    def start_training_job(self, request: dict[str, Any]) -> bool:
        """Start the job; False if a job of that name exists already (a repeated event)."""
        try:
            self.client.create_training_job(**request)
        except ClientError as error:
            if _is_duplicate(error):
                return False
            raise
        return True

    def start_processing_job(self, request: dict[str, Any]) -> bool:
        """Start the job; False if a job of that name exists already (a repeated event)."""
        try:
            self.client.create_processing_job(**request)
        except ClientError as error:
            if _is_duplicate(error):
                return False
            raise
        return True

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return dict(self.client.describe_training_job(TrainingJobName=name))

    def create_model(self, request: dict[str, Any]) -> None:
        """Idempotent: an existing model of the same name (a repeated event) is kept."""
        try:
            self.client.create_model(**request)
        except ClientError as error:
            if not _is_duplicate(error):
                raise

    def create_endpoint_config(self, request: dict[str, Any]) -> None:
        try:
            self.client.create_endpoint_config(**request)
        except ClientError as error:
            if not _is_duplicate(error):
                raise

    def describe_endpoint(self, name: str) -> EndpointState | None:
        try:
            described = self.client.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return EndpointState(
            name=name,
            status=described["EndpointStatus"],
            config_name=described.get("EndpointConfigName"),
            failure_reason=described.get("FailureReason"),
        )

    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]]) -> bool:
        """False if the endpoint appeared meanwhile (a concurrent deploy): reconcile again."""
        try:
            self.client.create_endpoint(
                EndpointName=name, EndpointConfigName=config_name, Tags=tags
            )
        except ClientError as error:
            if _is_duplicate(error):
                return False
            raise
        return True

    def delete_endpoint(self, name: str) -> None:
        """A Failed endpoint (see dropfit.deployment), or a deleted model's (dropfit.lifecycle)."""
        self._delete(self.client.delete_endpoint, EndpointName=name)

    def delete_endpoint_config(self, name: str) -> None:
        """Idempotent: a config that is gone already is fine."""
        self._delete(self.client.delete_endpoint_config, EndpointConfigName=name)

    def delete_model(self, name: str) -> None:
        """Idempotent: a model that is gone already is fine (its artifact stays in S3)."""
        self._delete(self.client.delete_model, ModelName=name)

    def stop_training_job(self, name: str) -> bool:
        """Stop a job that is still running; False if it is not (ended, or never started)."""
        try:
            self.client.stop_training_job(TrainingJobName=name)
        except ClientError as error:
            if _is_not_found(error) or (
                _code(error) == "ValidationException" and "in status" in _message(error)
            ):
                return False
            raise
        return True

    @staticmethod
    def _delete(call: Any, **name: str) -> None:
        try:
            call(**name)
        except ClientError as error:
            if not _is_not_found(error):
                raise

    def update_endpoint(self, name: str, config_name: str) -> bool:
        """In place, no downtime; False if the endpoint is busy (it will say when it is done)."""
        try:
            self.client.update_endpoint(EndpointName=name, EndpointConfigName=config_name)
        except ClientError as error:
            if _code(error) == "ValidationException" and "in-progress" in _message(error).lower():
                return False
            raise
        return True


@dataclass(frozen=True, slots=True)
class Invocation:
    body: bytes
    variant: str | None


class SageMakerRuntime:
    def __init__(self, client: Any) -> None:
        self.client = client

    def invoke(
        self,
        endpoint: str,
        body: bytes,
        content_type: str,
        accept: str,
        variant: str | None = None,
    ) -> Invocation:
        """InvokeEndpoint; with ``variant``, only that production variant may answer (raises
        :class:`VariantNotServing` once the endpoint has moved on from it)."""
        target = {"TargetVariant": variant} if variant is not None else {}
        try:
            response = self.client.invoke_endpoint(
                EndpointName=endpoint, Body=body, ContentType=content_type, Accept=accept, **target
            )
        except ClientError as error:
            message = _message(error).lower()
            if variant is not None and "variant" in message and "not found" in message:
                raise VariantNotServing(variant) from None
            raise _runtime_error(error, endpoint) from None
        return Invocation(
            body=response["Body"].read(), variant=response.get("InvokedProductionVariant")
        )


class VariantNotServing(RuntimeError):
    """The production variant a request was aimed at no longer serves (an update finished)."""


def _runtime_error(error: ClientError, endpoint: str) -> Exception:
    code = _code(error)
    if code == "ModelError":
        original = error.response.get("OriginalMessage") or _message(error)
        return ModelInferenceError(f"The model could not answer: {str(original)[:300]}")
    if code in {"ModelNotReadyException", "ServiceUnavailable"}:
        return ModelNotReady("The endpoint is starting; retry shortly.", retry_after=5)
    if code in _THROTTLING:
        return Throttled("The endpoint is at its concurrency limit; retry shortly.")
    if _is_not_found(error):
        return ModelNotReady(f"No endpoint is serving yet ({endpoint} is not in service).")
    if "oversize body" in _message(error).lower():
        return PayloadTooLarge("The request is larger than the endpoint accepts (4 MB).")
    return error
