"""SageMaker state-change events, as the real service sends them to EventBridge."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"

# Endpoint events spell the status differently from DescribeEndpoint (IN_SERVICE, not InService).
ENDPOINT_EVENT_STATUS = {
    "OutOfService": "OUT_OF_SERVICE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "SystemUpdating": "SYSTEM_UPDATING",
    "RollingBack": "ROLLING_BACK",
    "InService": "IN_SERVICE",
    "Deleting": "DELETING",
    "Failed": "FAILED",
}


def epoch_millis(value: Any) -> Any:
    """Deep copy of ``value`` with every datetime as epoch milliseconds (events use numbers)."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, Mapping):
        return {key: epoch_millis(item) for key, item in value.items()}
    if isinstance(value, list):
        return [epoch_millis(item) for item in value]
    return value


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """Events carry tags as a ``{key: value}`` map, not the API's list of pairs."""
    return {tag["Key"]: tag["Value"] for tag in tags}


def training_job_detail(description: Mapping[str, Any], tags: list[dict[str, str]]) -> dict:
    """Detail of a training job event: the DescribeTrainingJob shape plus Tags."""
    return {**epoch_millis(description), "Tags": tag_map(tags)}


def endpoint_detail(description: Mapping[str, Any], tags: list[dict[str, str]]) -> dict:
    """Detail of an endpoint event: name, ARN, config, variants, status, times, Tags."""
    detail = {
        key: description[key]
        for key in (
            "EndpointName",
            "EndpointArn",
            "EndpointConfigName",
            "ProductionVariants",
            "CreationTime",
            "LastModifiedTime",
            "FailureReason",
        )
        if key in description
    }
    detail["EndpointStatus"] = ENDPOINT_EVENT_STATUS[description["EndpointStatus"]]
    detail["Tags"] = tag_map(tags)
    return epoch_millis(detail)


class EventPublisher:
    """Puts events on the default bus from one background thread, in the order published.

    Callers publish while holding their state lock, so events of one resource can never
    overtake each other, yet no network call happens under that lock. A failed PutEvents is
    logged, never raised (the resource's state change stands, like a lost event).
    """

    def __init__(self, client: Any, log: Callable[[str], None]) -> None:
        self._client = client
        self._log = log
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="local-sagemaker-events", daemon=True
        )
        self._thread.start()

    def publish(self, detail_type: str, resource_arn: str, detail: Mapping[str, Any]) -> None:
        """Queue one ``aws.sagemaker`` event about ``resource_arn``."""
        self._queue.put(
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Resources": [resource_arn],
                "Detail": json.dumps(detail),
                "EventBusName": "default",
            }
        )

    def close(self) -> None:
        """Send what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            try:
                response = self._client.put_events(Entries=[entry])
            except (BotoCoreError, ClientError) as exc:
                self._log(f"[sagemaker] could not put a {entry['DetailType']!r} event: {exc}")
                continue
            if response.get("FailedEntryCount"):
                self._log(
                    f"[sagemaker] {entry['DetailType']!r} event rejected: {response['Entries']}"
                )
