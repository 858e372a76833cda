"""Processing jobs on the local SageMaker: the job's own entry point, run for real.

CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs and StopProcessingJob with
AWS's shapes. A job runs in a folder of its own that stands for the container's ``/``: its
S3 inputs are downloaded under ``<folder>/opt/ml/processing/input/...``, its
``ContainerEntrypoint`` and ``ContainerArguments`` run in a subprocess (``python3`` is this
interpreter; every ``/opt/ml/`` path in the entry point, arguments and ``Environment`` is
moved under the folder), and once it exits 0 its output folders are uploaded to their
``S3Output.S3Uri``. ``/opt/ml/output/message`` becomes ``ExitMessage``; the instances of
``ClusterConfig`` run as one (``resourceconfig.json`` names one host, ``algo-1``). Each status
change goes to EventBridge as "SageMaker Processing Job State Change", detail the
DescribeProcessingJob shape, as on AWS.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dropfit_local.sagemaker.errors import resource_in_use, validation
from dropfit_local.sagemaker.events import EventPublisher, epoch_millis, tag_map
from dropfit_local.sagemaker.training import split_s3_uri

Params = Mapping[str, Any]
PROCESSING_JOB_STATE_CHANGE = "SageMaker Processing Job State Change"
CONTAINER_ROOT = "/opt/ml/"
LOCAL_PATH_ROOT = "/opt/ml/processing/"
EXIT_MESSAGE_BYTES = 1024
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
# What AWS reports when the container exits non-zero.
ALGORITHM_ERROR = "AlgorithmError: See job logs for more detail."
_POLL_SECONDS = 0.2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Job:
    description: dict[str, Any]
    stop_requested: bool = False


class ProcessingJobs:
    """The four Processing operations and the worker that runs a job."""

    def __init__(
        self,
        *,
        arn: Callable[[str, str], str],
        s3: Any,
        events: EventPublisher,
        tags: dict[str, list[dict[str, str]]],
        lock: threading.RLock,
        submit: Callable[..., None],
        closing: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        self._arn = arn
        self._s3 = s3
        self._events = events
        self._tags = tags
        self._lock = lock
        self._submit = submit
        self._closing = closing
        self._log = log
        self._jobs: dict[str, _Job] = {}

    def operations(self) -> dict[str, Callable[[Params], dict[str, Any]]]:
        return {
            "CreateProcessingJob": self.create,
            "DescribeProcessingJob": self.describe,
            "ListProcessingJobs": self.list_jobs,
            "StopProcessingJob": self.stop,
        }

    # ---------------------------------------------------------------------- operations

    def create(self, params: Params) -> dict[str, Any]:
        name = params["ProcessingJobName"]
        arn = self._arn("processing-job", name)
        _check_request(params)
        now = _now()
        description: dict[str, Any] = {
            "ProcessingInputs": copy.deepcopy(params.get("ProcessingInputs", [])),
            "ProcessingJobName": name,
            "ProcessingResources": copy.deepcopy(params["ProcessingResources"]),
            "StoppingCondition": dict(
                params.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400}
            ),
            "AppSpecification": copy.deepcopy(params["AppSpecification"]),
            "RoleArn": params["RoleArn"],
            "ProcessingJobArn": arn,
            "ProcessingJobStatus": "InProgress",
            "LastModifiedTime": now,
            "CreationTime": now,
        }
        for optional in ("ProcessingOutputConfig", "Environment", "NetworkConfig"):
            if optional in params:
                description[optional] = copy.deepcopy(params[optional])
        with self._lock:
            if name in self._jobs:
                raise resource_in_use(
                    "Job name must be unique within an AWS account and region, and a job with "
                    f"this name already exists ({arn})"
                )
            job = _Job(description)
            self._jobs[name] = job
            self._tags[arn] = [dict(tag) for tag in params.get("Tags", [])]
            self._publish(job)
        self._log(f"[sagemaker] {name} InProgress - Starting the processing job")
        self._submit(self._run, name)
        return {"ProcessingJobArn": arn}

    def describe(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._job(params["ProcessingJobName"]).description)

    def list_jobs(self, params: Params) -> dict[str, Any]:
        # imported here: the backend imports this module
        from dropfit_local.sagemaker.backend import _paginate, _pick, _with_token

        keys = (
            "ProcessingJobName",
            "ProcessingJobArn",
            "CreationTime",
            "ProcessingEndTime",
            "LastModifiedTime",
            "ProcessingJobStatus",
            "FailureReason",
            "ExitMessage",
        )
        with self._lock:
            items = [_pick(job.description, keys) for job in self._jobs.values()]
        page, token = _paginate(items, params, "ProcessingJobName", "ProcessingJobStatus")
        return _with_token({"ProcessingJobSummaries": page}, token)

    def stop(self, params: Params) -> dict[str, Any]:
        with self._lock:
            job = self._job(params["ProcessingJobName"])
            status = job.description["ProcessingJobStatus"]
            if status != "InProgress":
                raise validation(
                    f"The request was rejected because the processing job is in status {status}."
                )
            job.stop_requested = True
            self._set_status(job, "Stopping")
        return {}

    # -------------------------------------------------------------------------- worker

    def _job(self, name: str) -> _Job:
        job = self._jobs.get(name)
        if job is None:
            raise validation(f"Could not find requested job with name {name}")
        return job

    def _publish(self, job: _Job) -> None:
        description = job.description
        arn = description["ProcessingJobArn"]
        detail = {**epoch_millis(description), "Tags": tag_map(self._tags.get(arn, []))}
        self._events.publish(PROCESSING_JOB_STATE_CHANGE, arn, detail)

    def _set_status(self, job: _Job, status: str) -> None:
        """Caller holds the lock."""
        job.description["ProcessingJobStatus"] = status
        job.description["LastModifiedTime"] = _now()
        self._publish(job)
        self._log(f"[sagemaker] {job.description['ProcessingJobName']} {status}")

    def _snapshot(self, name: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs[name]
            job.description.setdefault("ProcessingStartTime", _now())
            return copy.deepcopy(job.description)

    def _run(self, name: str) -> None:
        spec = self._snapshot(name)
        folder = Path(tempfile.mkdtemp(prefix=f"processing-{name}-"))
        try:
            status, reason, message = self._execute(name, spec, folder)
        except _Failure as failure:
            status, reason, message = "Failed", str(failure), None
        except Exception as exc:
            self._log(f"[sagemaker] {name} internal error:\n{traceback.format_exc()}")
            status, reason, message = "Failed", f"InternalServerError: {exc}", None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self._closing.is_set():
            return
        with self._lock:
            job = self._jobs[name]
            if job.stop_requested:
                status, reason = "Stopped", None
            now = _now()
            job.description["ProcessingEndTime"] = now
            if reason:
                job.description["FailureReason"] = reason
            if message is not None:
                job.description["ExitMessage"] = message
            self._set_status(job, status)
        if reason:
            self._log(f"[sagemaker] {name} FailureReason: {reason}")

    def _execute(
        self, name: str, spec: Mapping[str, Any], folder: Path
    ) -> tuple[str, str | None, str | None]:
        app = spec["AppSpecification"]
        _check_image(app["ImageUri"])
        for item in spec.get("ProcessingInputs", []):
            if "S3Input" in item:
                self._download(item["S3Input"], folder)
        config = folder / "opt/ml/config/resourceconfig.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        outputs = spec.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for output in outputs:
            if "S3Output" in output:
                _inside(folder, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        command = [_inside_text(folder, part) for part in app["ContainerEntrypoint"]]
        command += [_inside_text(folder, part) for part in app.get("ContainerArguments", [])]
        if command[0] in {"python3", "python"}:
            command[0] = sys.executable
        env = {**os.environ}
        env.update({k: _inside_text(folder, v) for k, v in spec.get("Environment", {}).items()})
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output_lines = self._follow(name, process)
        message_file = folder / "opt/ml/output/message"
        message = (
            message_file.read_bytes()[:EXIT_MESSAGE_BYTES].decode("utf-8", "replace")
            if message_file.exists()
            else None
        )
        with self._lock:
            stopped = self._jobs[name].stop_requested
        if stopped:
            return "Stopped", None, message
        if process.returncode != 0:
            tail = output_lines[-1] if output_lines else ""
            self._log(f"[sagemaker] {name} exited {process.returncode}: {tail}")
            return "Failed", ALGORITHM_ERROR, message
        for output in outputs:
            if "S3Output" in output:
                self._upload(output["S3Output"], folder)
        return "Completed", None, message

    def _follow(self, name: str, process: subprocess.Popen[bytes]) -> list[str]:
        """The job's output, logged line by line; stops (kills) it when asked to."""
        lines: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                lines.append(line)
                self._log(f"[sagemaker] {name} {line}")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while process.poll() is None:
            with self._lock:
                stop = self._jobs[name].stop_requested
            if stop or self._closing.is_set():
                process.kill()
            try:
                process.wait(_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                continue
        reader.join(5)
        return lines

    def _download(self, source: Mapping[str, Any], folder: Path) -> None:
        bucket, prefix = split_s3_uri(source["S3Uri"])
        # Keys keep their path after the prefix's last "/" (an object's own key: its name).
        base = prefix[: prefix.rfind("/") + 1]
        target = _inside(folder, source["LocalPath"])
        target.mkdir(parents=True, exist_ok=True)
        try:
            keys = [
                item["Key"]
                for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix
                )
                for item in page.get("Contents", [])
            ]
            if not keys:
                raise _Failure(
                    f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}" given '
                    "in input data source. Please ensure that the bucket exists in the selected "
                    "region, that objects exist under that S3 prefix, and that the role has "
                    "access to them."
                )
            for key in keys:
                path = target / key[len(base) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                self._s3.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise _Failure(f"ClientError: cannot read {source['S3Uri']}: {exc}") from None

    def _upload(self, output: Mapping[str, Any], folder: Path) -> None:
        bucket, prefix = split_s3_uri(output["S3Uri"])
        prefix = prefix.rstrip("/")
        local = _inside(folder, output["LocalPath"])
        try:
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                key = f"{prefix}/{path.relative_to(local).as_posix()}"
                self._s3.upload_file(str(path), bucket, key)
        except (ClientError, BotoCoreError) as exc:
            raise _Failure(f"ClientError: cannot write {output['S3Uri']}: {exc}") from None


class _Failure(Exception):
    """The job fails with this FailureReason."""


def _inside(folder: Path, container_path: str) -> Path:
    return folder / container_path.lstrip("/")


def _inside_text(folder: Path, text: str) -> str:
    """A container path (or a list of them, as in PYTHONPATH) moved under the job's folder."""
    return text.replace(CONTAINER_ROOT, f"{folder}{CONTAINER_ROOT}")


def _check_image(image: str) -> None:
    """The local SageMaker runs the entry point with this interpreter: only the scikit-learn
    image's Python and libraries are stood in for."""
    repository = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if repository != SKLEARN_REPOSITORY:
        raise _Failure(
            "ClientError: The local SageMaker runs Processing jobs in the scikit-learn image only "
            f"(a repository named {SKLEARN_REPOSITORY}); {image!r} is another image."
        )


def _check_request(params: Params) -> None:
    """What AWS refuses beyond the API model's constraints, and what the local one cannot run."""
    app = params["AppSpecification"]
    if not app.get("ContainerEntrypoint"):
        raise validation(
            "The local SageMaker runs a Processing job's ContainerEntrypoint (it has no images): "
            'set AppSpecification.ContainerEntrypoint, e.g. ["python3", "-m", "module"].'
        )
    inputs = params.get("ProcessingInputs", [])
    outputs = params.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for kind, items, key in (("Input", inputs, "InputName"), ("Output", outputs, "OutputName")):
        names = [item[key] for item in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise validation(f"{kind} names must be unique: {', '.join(repeated)}")
        for item in items:
            s3 = item.get("S3Input") or item.get("S3Output")
            if s3 is None:
                continue
            if not s3["LocalPath"].startswith(LOCAL_PATH_ROOT):
                raise validation(
                    f"LocalPath {s3['LocalPath']} of {item[key]} must be under {LOCAL_PATH_ROOT}"
                )
            try:
                split_s3_uri(s3["S3Uri"])
            except ValueError as exc:
                raise validation(f"Invalid S3Uri of {item[key]}: {exc}") from None
