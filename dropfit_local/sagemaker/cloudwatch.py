"""The local SageMaker's CloudWatch Logs: job and endpoint logs under AWS's group and stream names.

AWS writes a training job's container output to ``/aws/sagemaker/TrainingJobs``, stream
``{job}/algo-{instance}-{epoch seconds}``, and an endpoint's to ``/aws/sagemaker/Endpoints/{name}``,
stream ``{variant}/{instance id}``: the names the sagemaker SDK reads (``logs_for_job``, live
deploy logging). A write that fails is reported on the local log and never fails the job or the
endpoint, as a lost log line does not on AWS.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
HOST = "algo-1"  # the one instance a local job runs on
# The built-in algorithms' log prefix: "[MM/DD/YYYY HH:MM:SS INFO <thread id>] ".
_THREAD_ID = 140000000000000 + os.getpid()


def endpoint_group(endpoint: str) -> str:
    """The log group of an endpoint's containers."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def training_stream(job: str, started: dt.datetime) -> str:
    """The stream of the job's one instance, named by the second its container started."""
    return f"{job}/{HOST}-{int(started.timestamp())}"


def endpoint_stream(variant: str) -> str:
    """A stream for one instance of a variant (AWS names it by the EC2-style instance id)."""
    return f"{variant}/i-{secrets.token_hex(9)[:17]}"


def algorithm_line(message: str, level: str = "INFO") -> str:
    """``message`` with the built-in algorithms' ``[date time LEVEL thread]`` prefix."""
    return f"[{dt.datetime.now(dt.UTC):%m/%d/%Y %H:%M:%S} {level} {_THREAD_ID}] {message}"


class LogWriter:
    """Creates groups and streams on first use and puts events (one lock: ordered writes)."""

    def __init__(self, client: Any | None, log: Callable[[str], None]) -> None:
        """``client``: a ``logs`` client, or None to write nothing (no logs endpoint given)."""
        self._client = client
        self._log = log
        self._lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()

    def write(self, group: str, stream: str, lines: Iterable[str]) -> None:
        """Append ``lines`` to ``group``/``stream``, stamped now, in order."""
        messages = [line for line in lines if line]
        if self._client is None or not messages:
            return
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        events = [{"timestamp": now, "message": message} for message in messages]
        try:
            with self._lock:
                self._ensure(self._client, group, stream)
                self._client.put_log_events(
                    logGroupName=group, logStreamName=stream, logEvents=events
                )
        except (ClientError, BotoCoreError) as exc:
            self._log(f"[sagemaker] CloudWatch Logs {group} {stream}: {exc}")

    def _ensure(self, client: Any, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        for create, arguments in (
            (client.create_log_group, {"logGroupName": group}),
            (
                client.create_log_stream,
                {"logGroupName": group, "logStreamName": stream},
            ),
        ):
            try:
                create(**arguments)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
        self._streams.add((group, stream))
