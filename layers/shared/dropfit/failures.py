"""Every failure ends its run: retried while it may pass, else FAILED with a reason and a notice.

The format and deploy functions are invoked asynchronously, so Lambda runs an event up to
``1 + EventInvokeConfig.MaximumRetryAttempts`` times (``ASYNC_ATTEMPTS``; the template sets both
and a test checks they agree) before its dead-letter queue gets it. An error on a run is either

- transient (throttled, a 5xx, a connection reset, a quota such as ``ResourceLimitExceeded``
  that frees up, an endpoint still busy): the function counts the failed attempt on the run
  (``failed_attempts``, which survives the retry's claim) and raises, so that Lambda retries the
  event (after about 1 and 2 minutes: that is the backoff); the attempt that counts the last
  one ends the run instead;
- anything else (a request SageMaker refuses, access denied, a bug): retrying cannot help, so
  the run ends at once.

Counting failures, not attempts, keeps a duplicate delivery of the event (EventBridge delivers
at least once) from using up a run's attempts. Within an attempt, botocore already retries
throttling and 5xx answers a few times (its retry modes); what reaches here failed those too.

Ending a run is one conditional write (only from the statuses the caller names, so a copy of the
event that got further is never undone) and one message to the failure topic. What is left
is the case where the table itself cannot be written on every attempt: the event then goes to
the dead-letter queue intact, and the failure topic is still told.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from dropfit.aws.notify import FailureNotifier
from dropfit.aws.table import RunsTable
from dropfit.records import RunStatus

logger = logging.getLogger("dropfit")

# Error codes AWS services answer when the same request may pass later.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
        # SageMaker: an account quota (e.g. training instances) that frees up as jobs finish
        "ResourceLimitExceeded",
    }
)
REASON_CHARS = 600  # of an AWS error's own message, in a reason


class RetryLater(RuntimeError):
    """Raised on purpose for Lambda to retry the event later (e.g. an endpoint still busy)."""


def is_transient(error: BaseException) -> bool:
    """Whether the same call may pass if tried again later."""
    if isinstance(error, RetryLater | BotocoreConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def explain(error: BaseException) -> str:
    """What went wrong, in words an operator can search for (the AWS call and its error)."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "error")
        message = str(error.response.get("Error", {}).get("Message", ""))[:REASON_CHARS]
        return f"{error.operation_name} answered {code}" + (f" ({message})" if message else "")
    if isinstance(error, RetryLater):
        return str(error)
    return f"{type(error).__name__}: {str(error)[:REASON_CHARS]}"


def failure_reason(doing: str, error: BaseException, failed_attempts: int | None) -> str:
    """An actionable reason: what failed, why, and what to do."""
    why = explain(error)
    if failed_attempts is not None:
        return (
            f"Could not {doing}: {why}, on each of {failed_attempts} attempts over a few "
            "minutes. Nothing is wrong with the upload; upload it again later (if this was a "
            "quota, such as SageMaker's training instances, wait for running jobs to finish or "
            "ask AWS for a higher quota)."
        )
    return (
        f"Could not {doing}: {why}. Retrying would not help; this is a problem of the "
        "deployment, not of the upload. Tell the stack's operator (the function's log has the "
        "details)."
    )


@dataclass(frozen=True, slots=True)
class RunEnder:
    """Ends runs that failed: the one place that turns an error into FAILED + a notification."""

    table: RunsTable
    notifier: FailureNotifier
    attempts: int  # how often Lambda runs an event: 1 + MaximumRetryAttempts

    def should_retry(self, model: str, job: str, error: BaseException) -> bool:
        """True if Lambda should run the event again (count this failed attempt first)."""
        if not is_transient(error):
            return False
        return self.table.count_failed_attempt(model, job) < self.attempts

    def end(
        self,
        model: str,
        job: str,
        stage: str,
        doing: str,
        error: BaseException,
        *,
        only_from: set[RunStatus],
        **changes: Any,
    ) -> str:
        """FAILED with the reason this error gives, and the failure topic told; the reason."""
        reason = failure_reason(doing, error, self.attempts if is_transient(error) else None)
        logger.error(
            "run failed", extra={"model": model, "run": job, "stage": stage, "reason": reason}
        )
        self.fail(model, job, stage, reason, only_from=only_from, **changes)
        return reason

    def fail(
        self,
        model: str,
        job: str,
        stage: str,
        reason: str,
        *,
        only_from: set[RunStatus],
        **changes: Any,
    ) -> bool:
        """FAILED with ``reason`` (if its status is one of ``only_from``), then notify."""
        try:
            ended = self.table.update_run(
                model, job, only_from=only_from, status=RunStatus.FAILED, reason=reason, **changes
            )
        except Exception:
            # The table cannot be written: the event goes to the dead-letter queue; say so.
            self.notifier.run_failed(model, job, stage, f"{reason} (not recorded on the run)")
            raise
        if ended:
            self.notifier.run_failed(model, job, stage, reason)
        return ended
