"""The HTTP API's error answers: one JSON shape, and the handlers each API function registers.

Every error is ``{"error": {"code", "message"}}``. Domain errors (:class:`ApiError`, a bad model
name) keep their status and message; a route that does not exist is a 404 that says where the
routes are; anything else is a 500 that names the request id only, its details in the log.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from dropfit.errors import ApiError, InvalidModelName
from dropfit.public import public_text


def register_error_handlers(
    app: APIGatewayHttpResolver,
    logger: Logger,
    *,
    routes_hint: str,
) -> None:
    """Answer ``app``'s errors as above; ``routes_hint`` ends the 404's message. Every message
    passes through :func:`public_text`: no AWS internals, and small whatever it echoes."""

    def answer(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            status_code=status,
            content_type="application/json",
            body=json.dumps({"error": {"code": code, "message": public_text(message)}}),
            headers=headers or {},
        )

    @app.exception_handler(ApiError)
    def api_error(error: ApiError) -> Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return answer(error.status, error.code, error.message, headers)

    @app.exception_handler(InvalidModelName)
    def invalid_model_name(error: InvalidModelName) -> Response:
        return answer(400, error.code, error.message)

    @app.not_found
    def not_found(_: Exception) -> Response:
        return answer(404, "NotFound", f"No such route; see {routes_hint}.")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        # Never leak internals: log the details, answer with the request id only.
        logger.exception("unhandled error")
        request_id = app.lambda_context.aws_request_id if app.lambda_context else "unknown"
        return answer(500, "InternalError", f"Internal error (request id {request_id}).")
