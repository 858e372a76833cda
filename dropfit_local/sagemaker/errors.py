"""Errors the local SageMaker answers with, shaped like the real service's."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An AWS error response: ``code`` becomes botocore's ``Error.Code``.

    ``fields`` are extra members of the error body (e.g. ``OriginalStatusCode`` of the
    runtime's ``ModelError``), which botocore copies into the parsed error response.
    """

    def __init__(
        self, code: str, message: str, *, status: int = 400, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}


def validation(message: str) -> ServiceError:
    """The control plane's generic 400 (bad input, unknown or busy resource)."""
    return ServiceError("ValidationException", message)


def resource_in_use(message: str) -> ServiceError:
    """The control plane's error for a training job name that is taken."""
    return ServiceError("ResourceInUse", message)


def runtime_validation(message: str) -> ServiceError:
    """The runtime's 400 (unknown endpoint, oversize body, bad parameters)."""
    return ServiceError("ValidationError", message)
