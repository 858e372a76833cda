"""dropfit_local.event_delivery: retries like Lambda's async invokes, then the dead-letter queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from dropfit_local.event_delivery import DeliveryTarget, QueuePoller
from dropfit_local.lambda_runtime import InvocationError, InvocationResult

EVENT = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::bucket"],
    "detail": {"bucket": {"name": "bucket"}, "object": {"key": "incoming/ü.csv"}},
}
# The original text, with its own spacing: dead-lettering must keep it byte for byte.
BODY = json.dumps(EVENT, indent=1, ensure_ascii=False)


@dataclass
class FlakyFunction:
    """Fails ``failures`` times (a handler error, or ``unreachable``), then succeeds."""

    failures: int
    unreachable: bool = False
    events: list[Any] = field(default_factory=list)

    def invoke(self, event: Any) -> InvocationResult:
        self.events.append(event)
        if len(self.events) <= self.failures:
            if self.unreachable:
                raise InvocationError("runtime unreachable: connection refused")
            error = {
                "errorMessage": f"attempt {len(self.events)} failed",
                "errorType": "ValueError",
                "requestId": f"req-{len(self.events)}",
                "stackTrace": [],
            }
            return InvocationResult(json.dumps(error).encode(), "Unhandled", 5.0, "")
        return InvocationResult(b'{"ok": true}', None, 5.0, "")


@dataclass
class Queues:
    sqs: Any
    source: str
    on_failure: str
    rule_dead_letter: str

    def messages(self, url: str) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
        )


@pytest.fixture
def queues(moto_url: str) -> Queues:
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    suffix = uuid.uuid4().hex[:8]

    def create(name: str) -> str:
        return str(sqs.create_queue(QueueName=f"{name}-{suffix}")["QueueUrl"])

    return Queues(sqs, create("source"), create("on-failure"), create("rule-dlq"))


Make = Callable[..., tuple[QueuePoller, list[str]]]


@pytest.fixture
def make(queues: Queues) -> Iterator[Make]:
    pollers: list[QueuePoller] = []

    def factory(
        function: FlakyFunction | SlowFunction,
        *,
        retries: int = 2,
        on_failure: bool = True,
        delays: tuple[float, ...] = (0.0,),
        parallelism: int = 1,
    ) -> tuple[QueuePoller, list[str]]:
        logs: list[str] = []
        target = DeliveryTarget(
            label="format",
            function_name="dropfit-local-FormatFunction",
            source="dropfit-local-FormatFunctionObjectCreated",
            queue_url=queues.source,
            timeout_seconds=5,
            max_retry_attempts=retries,
            on_failure_url=queues.on_failure if on_failure else None,
            rule_retry_attempts=3,
            rule_dead_letter_url=queues.rule_dead_letter,
        )
        poller = QueuePoller(
            target,
            queues.sqs,
            function.invoke,
            retry_delays=delays,
            wait_seconds=0,
            parallelism=parallelism,
            log=logs.append,
        )
        pollers.append(poller)
        return poller, logs

    yield factory
    for poller in pollers:
        poller.request_stop()
        poller.join(5)


def receive_one(queues: Queues) -> dict[str, Any]:
    queues.sqs.send_message(QueueUrl=queues.source, MessageBody=BODY)
    (message,) = queues.sqs.receive_message(QueueUrl=queues.source, VisibilityTimeout=60)[
        "Messages"
    ]
    return dict(message)


def test_a_function_that_recovers_within_the_retries_gets_the_event_once_per_attempt(
    queues: Queues, make: Make
) -> None:
    function = FlakyFunction(failures=2)
    poller, logs = make(function, retries=2)

    poller.deliver(receive_one(queues))

    assert function.events == [EVENT, EVENT, EVENT]
    assert queues.messages(queues.on_failure) == []
    assert "attempt 3 ok" in logs[-1]
    assert _queue_is_empty(queues, queues.source)


def test_a_function_failing_every_retry_dead_letters_the_original_event(
    queues: Queues, make: Make
) -> None:
    function = FlakyFunction(failures=99)
    poller, logs = make(function, retries=2)

    poller.deliver(receive_one(queues))

    assert len(function.events) == 3  # the first attempt and MaximumRetryAttempts=2 retries
    (dead,) = queues.messages(queues.on_failure)
    assert dead["Body"] == BODY
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes == {
        "RequestID": "req-3",
        "ErrorCode": "200",
        "ErrorMessage": "attempt 3 failed",
        "ErrorType": "ValueError",
        "FailureKind": "FunctionError",
        "FunctionName": "dropfit-local-FormatFunction",
        "Rule": "dropfit-local-FormatFunctionObjectCreated",
        "Attempts": "3",
    }
    assert queues.messages(queues.rule_dead_letter) == []
    assert _queue_is_empty(queues, queues.source)
    assert "sent to on-failure" in logs[-1]


def test_retries_wait_the_configured_delays(queues: Queues, make: Make) -> None:
    poller, _ = make(FlakyFunction(failures=2), retries=2, delays=(0.2, 0.4))
    started = time.monotonic()
    poller.deliver(receive_one(queues))
    assert time.monotonic() - started >= 0.6


def test_an_unreachable_function_follows_the_rules_retry_policy_and_dead_letter(
    queues: Queues, make: Make
) -> None:
    function = FlakyFunction(failures=99, unreachable=True)
    poller, _ = make(function)

    poller.deliver(receive_one(queues))

    assert len(function.events) == 4  # the first attempt and the rule's 3 retries
    (dead,) = queues.messages(queues.rule_dead_letter)
    assert dead["Body"] == BODY
    assert dead["MessageAttributes"]["FailureKind"]["StringValue"] == "DeliveryFailure"
    assert queues.messages(queues.on_failure) == []


def test_without_a_destination_the_event_is_dropped_as_aws_drops_it(
    queues: Queues, make: Make
) -> None:
    poller, logs = make(FlakyFunction(failures=99), retries=0, on_failure=False)
    poller.deliver(receive_one(queues))
    assert "dropped" in logs[-1]
    assert _queue_is_empty(queues, queues.source)


def test_a_delivery_interrupted_by_stop_stays_in_its_queue(queues: Queues, make: Make) -> None:
    function = FlakyFunction(failures=99)
    poller, _ = make(function, retries=5, delays=(0.0,))
    poller.request_stop()
    message = receive_one(queues)

    poller.deliver(message)

    assert function.events == []
    queues.sqs.change_message_visibility(
        QueueUrl=queues.source, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    (still_there,) = queues.messages(queues.source)
    assert still_there["Body"] == BODY


def test_the_poller_thread_drains_its_queue(queues: Queues, make: Make) -> None:
    function = FlakyFunction(failures=0)
    poller, _ = make(function)
    poller.start()
    queues.sqs.send_message(QueueUrl=queues.source, MessageBody=BODY)
    deadline = time.monotonic() + 10
    while not function.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert function.events == [EVENT]
    poller.request_stop()
    poller.join(5)


@dataclass
class SlowFunction:
    """Takes a while per event and remembers how many events it ever had at once."""

    seconds: float
    active: int = 0
    most: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, event: Any) -> InvocationResult:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
            self.done += 1
        return InvocationResult(b"null", None, self.seconds * 1000, "")


@pytest.mark.parametrize("parallelism", [1, 3])
def test_a_poller_delivers_as_many_events_at_once_as_its_function_has_runtimes(
    queues: Queues, make: Make, parallelism: int
) -> None:
    function = SlowFunction(seconds=0.5)
    poller, _ = make(function, parallelism=parallelism)
    for _ in range(4):
        queues.sqs.send_message(QueueUrl=queues.source, MessageBody=BODY)

    poller.start()
    deadline = time.monotonic() + 20
    while function.done < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.request_stop()
    poller.join(5)

    assert (function.done, function.most) == (4, parallelism)
    assert _queue_is_empty(queues, queues.source)


def _queue_is_empty(queues: Queues, url: str) -> bool:
    attributes = queues.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
