"""EventBridge -> Lambda delivery: one SQS queue per (function, rule), drained like async invokes.

Each rule of the template targets its own queue in moto, so moto's own S3 -> EventBridge -> rule
-> target path does the pattern matching. A poller thread per queue long-polls it and invokes
the function with the event, as EventBridge invokes a Lambda target asynchronously, up to
``parallelism`` events at a time (the function's runtime count: Lambda runs concurrent
asynchronous invocations side by side, so duplicates and bursts really race here too):

* a function error is retried like Lambda's asynchronous invocation (``EventInvokeConfig``
  ``MaximumRetryAttempts``, default 2), after short local delays (0.2 s, 0.4 s instead of
  Lambda's minutes), then the original event goes, intact, to the ``OnFailure`` destination;
* a failure to reach the function at all is retried per the rule's ``RetryPolicy`` and then goes
  to the rule's ``DeadLetterConfig`` queue;
* the error travels in message attributes (``ErrorType``, ``ErrorMessage``, ``RequestID``,
  ``ErrorCode`` ...), as Lambda's dead-letter queues carry it.

A message leaves its queue only once it was handled or dead-lettered, so nothing is lost if the
stack stops mid-delivery. Without a destination the event is dropped, as AWS drops it, and the
log says so.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dropfit_local.lambda_runtime import InvocationError, InvocationResult

DEFAULT_RETRY_DELAYS = (0.2, 0.4)
DEFAULT_RULE_RETRY_ATTEMPTS = 185  # EventBridge's RetryPolicy.MaximumRetryAttempts default
MAX_VISIBILITY_SECONDS = 12 * 60 * 60
_MAX_ATTRIBUTE_TEXT = 4096


@dataclass(frozen=True)
class DeliveryTarget:
    """Where one rule's events go and what happens when they cannot be handled."""

    label: str  # the function's log label, e.g. "format"
    function_name: str
    source: str  # the rule's name
    queue_url: str
    timeout_seconds: int
    max_retry_attempts: int  # EventInvokeConfig.MaximumRetryAttempts
    on_failure_url: str | None  # EventInvokeConfig.DestinationConfig.OnFailure
    rule_retry_attempts: int  # the rule's RetryPolicy.MaximumRetryAttempts
    rule_dead_letter_url: str | None  # the rule's DeadLetterConfig


@dataclass(frozen=True)
class Failure:
    kind: str  # "FunctionError" or "DeliveryFailure"
    error_type: str
    message: str
    request_id: str
    attempts: int


def _delay(delays: Sequence[float], retry: int) -> float:
    return delays[min(retry, len(delays) - 1)] if delays else 0.0


class QueuePoller:
    """Drains one queue into one function (a thread; see the module docstring)."""

    def __init__(
        self,
        target: DeliveryTarget,
        sqs: Any,
        invoke: Callable[[Any], InvocationResult],
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        wait_seconds: int = 1,
        parallelism: int = 1,
        log: Callable[[str], None] = print,
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.target = target
        self.parallelism = parallelism
        self._sqs = sqs
        self._invoke = invoke
        self._delays = tuple(retry_delays)
        self._wait = wait_seconds
        self._log = log
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # A message is received only when a delivery slot is free: the others stay in the queue.
        self._slots = threading.BoundedSemaphore(parallelism)
        self._deliveries: set[threading.Thread] = set()
        self._deliveries_lock = threading.Lock()
        retries = max(target.max_retry_attempts, target.rule_retry_attempts)
        worst = (retries + 1) * (target.timeout_seconds + 30) + sum(self._delays) * retries
        self._visibility = int(min(MAX_VISIBILITY_SECONDS, worst))

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"delivery-{self.target.source}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the current receive; an unfinished message stays in its queue."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the receiving thread, then for the deliveries in progress."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        with self._deliveries_lock:
            deliveries = list(self._deliveries)
        for delivery in deliveries:
            delivery.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue  # every slot busy: check for stop, then wait again
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self.target.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=self._wait,
                    VisibilityTimeout=self._visibility,
                    AttributeNames=["All"],
                )
            except (BotoCoreError, ClientError) as error:
                self._slots.release()
                if not self._stopping.is_set():
                    self._log(f"[delivery] {self.target.source}: cannot receive: {error}")
                    self._stopping.wait(1)
                continue
            messages = response.get("Messages", [])
            if not messages:
                self._slots.release()
            for message in messages:  # at most one: it holds the slot taken above
                self._start_delivery(message)

    def _start_delivery(self, message: dict[str, Any]) -> None:
        def run() -> None:
            try:
                self.deliver(message)
            finally:
                with self._deliveries_lock:
                    self._deliveries.discard(thread)
                self._slots.release()

        thread = threading.Thread(target=run, name=f"deliver-{self.target.source}", daemon=True)
        with self._deliveries_lock:
            self._deliveries.add(thread)
        thread.start()

    def deliver(self, message: dict[str, Any]) -> None:
        """Invoke the function with one message's event, retrying, dead-lettering, deleting."""
        target = self.target
        try:
            event = json.loads(message["Body"])
        except ValueError as error:
            failure = Failure("DeliveryFailure", "InvalidEvent", str(error), "", 0)
            self._finish(message, failure, "unreadable event")
            return
        name = _describe(event)
        # Function errors are retried per EventInvokeConfig, failures to reach the function per
        # the rule's RetryPolicy: each kind counts against its own limit.
        limits = {
            "FunctionError": target.max_retry_attempts,
            "DeliveryFailure": target.rule_retry_attempts,
        }
        retries = dict.fromkeys(limits, 0)
        while not self._stopping.is_set():
            attempt = sum(retries.values()) + 1
            try:
                result = self._invoke(event)
            except InvocationError as error:
                failure = Failure("DeliveryFailure", "InvocationError", str(error), "", attempt)
                outcome = f"not delivered ({error})"
            else:
                if result.function_error is None:
                    self._log(
                        f"[delivery] {name} -> {target.label}: attempt {attempt} ok "
                        f"({result.duration_ms:.0f} ms)"
                    )
                    self._delete(message)
                    return
                failure = Failure(
                    "FunctionError",
                    result.error_type or "Unknown",
                    result.error_message or "",
                    _request_id(result),
                    attempt,
                )
                outcome = f"failed ({failure.error_type}: {failure.message})"
            retries[failure.kind] += 1
            if retries[failure.kind] > limits[failure.kind]:
                self._finish(message, failure, name)
                return
            wait = _delay(self._delays, retries[failure.kind] - 1)
            self._log(
                f"[delivery] {name} -> {target.label}: attempt {attempt} {outcome}; "
                f"retrying in {wait} s"
            )
            self._stopping.wait(wait)

    def _finish(self, message: dict[str, Any], failure: Failure, name: str) -> None:
        """Dead-letter the original body (when there is a destination), then delete."""
        target = self.target
        destination = (
            target.on_failure_url
            if failure.kind == "FunctionError"
            else target.rule_dead_letter_url
        )
        summary = f"{failure.error_type}: {failure.message}"
        if destination is None:
            self._log(
                f"[delivery] {name} -> {target.label}: failed after {failure.attempts} attempt(s) "
                f"({summary}); dropped: the template names no destination for it"
            )
            self._delete(message)
            return
        try:
            self._sqs.send_message(
                QueueUrl=destination,
                MessageBody=message["Body"],
                MessageAttributes=_attributes(target, failure),
            )
        except (BotoCoreError, ClientError) as error:
            # Keep the message: it becomes visible again and is retried later.
            self._log(f"[delivery] {name}: cannot dead-letter ({error}); left in its queue")
            return
        self._log(
            f"[delivery] {name} -> {target.label}: failed after {failure.attempts} attempt(s) "
            f"({summary}); sent to {destination.rsplit('/', 1)[-1]}"
        )
        self._delete(message)

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self._sqs.delete_message(
                QueueUrl=self.target.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError) as error:
            self._log(f"[delivery] {self.target.source}: cannot delete a message: {error}")


def _attributes(target: DeliveryTarget, failure: Failure) -> dict[str, dict[str, str]]:
    def text(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value[:_MAX_ATTRIBUTE_TEXT] or "-"}

    return {
        # The three attributes Lambda puts on a dead-lettered asynchronous event ...
        "RequestID": text(failure.request_id or str(uuid.uuid4())),
        "ErrorCode": {
            "DataType": "Number",
            "StringValue": "200" if failure.kind == "FunctionError" else "500",
        },
        "ErrorMessage": text(failure.message),
        # ... and what makes the local log easy to follow.
        "ErrorType": text(failure.error_type),
        "FailureKind": text(failure.kind),
        "FunctionName": text(target.function_name),
        "Rule": text(target.source),
        "Attempts": {"DataType": "Number", "StringValue": str(failure.attempts)},
    }


def _request_id(result: InvocationResult) -> str:
    try:
        document = result.json()
    except ValueError:
        return ""
    return str(document.get("requestId") or "") if isinstance(document, dict) else ""


def _describe(event: Any) -> str:
    """A short name for an event in the log: its detail-type and the object or job it is about."""
    if not isinstance(event, dict):
        return "event"
    detail: dict[str, Any] = event["detail"] if isinstance(event.get("detail"), dict) else {}
    subject = (
        (detail.get("object") or {}).get("key")
        if isinstance(detail.get("object"), dict)
        else detail.get("TrainingJobName") or detail.get("EndpointName")
    )
    kind = event.get("detail-type", "event")
    return f"{kind!r} {subject}" if subject else repr(kind)


def start_pollers(pollers: Sequence[QueuePoller]) -> None:
    for poller in pollers:
        poller.start()


def stop_pollers(pollers: Sequence[QueuePoller], timeout: float = 5.0) -> None:
    """Ask every poller to stop, then wait for them (a delivery in progress may take a moment)."""
    for poller in pollers:
        poller.request_stop()
    deadline = time.monotonic() + timeout
    for poller in pollers:
        poller.join(max(0.0, deadline - time.monotonic()))
