"""Errors a user can cause, each with a message that says what to do.

API errors carry their HTTP status and a stable ``code``; the predict function maps them to
responses in one place.
"""

from __future__ import annotations


class DropfitError(Exception):
    """Base of every error Dropfit raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- uploads: end the run with a reason, never start a training job ------------------------


class InvalidUpload(DropfitError):
    """The uploaded CSV or its options cannot make a model; the message names the problem."""


class InvalidModelName(InvalidUpload):
    status = 400
    code = "InvalidModelName"


# --- API ------------------------------------------------------------------------------------


class ApiError(DropfitError):
    status = 500
    code = "InternalError"
    retry_after: int | None = None


class BadRequest(ApiError):
    status = 400
    code = "BadRequest"


class UnprocessableRequest(ApiError):
    status = 422
    code = "InvalidInstances"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UnsupportedMediaType"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PayloadTooLarge"


class NeighborsDisabled(ApiError):
    """``?neighbors=true`` on a stack deployed without ``AllowNeighbors=true``."""

    status = 403
    code = "NeighborsDisabled"


class ModelNotFound(ApiError):
    status = 404
    code = "ModelNotFound"


class ReportNotFound(ApiError):
    """The model serves a run whose report is not written (yet)."""

    status = 404
    code = "ReportNotFound"


class RunNotFound(ApiError):
    status = 404
    code = "RunNotFound"


class LifecycleConflict(ApiError):
    """A delete or rollback that the model's current state does not allow; the message says why."""

    status = 409
    code = "Conflict"


class ModelNotReady(ApiError):
    """No endpoint is serving this model yet (training, deploying, or the first deploy failed)."""

    status = 503
    code = "ModelNotReady"

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelInferenceError(ApiError):
    """The endpoint answered with an error of the algorithm (SageMaker's ModelError)."""

    status = 502
    code = "ModelError"


class Throttled(ApiError):
    status = 429
    code = "Throttled"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
