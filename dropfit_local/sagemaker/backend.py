"""State and behaviour of the local SageMaker: control-plane operations, workers, runtime.

Everything mutable lives behind one re-entrant lock. Slow work (S3 transfers, training,
the endpoint delay) runs on a small worker pool without the lock and re-checks, when it comes
back, that the resource it worked for has not been deleted or superseded meanwhile.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from dropfit_local import faults
from dropfit_local.knn import InferenceInputError, KnnModel, ModelArtifactError
from dropfit_local.sagemaker import inference
from dropfit_local.sagemaker.cloudwatch import (
    TRAINING_GROUP,
    LogWriter,
    algorithm_line,
    endpoint_group,
    endpoint_stream,
    training_stream,
)
from dropfit_local.sagemaker.errors import (
    ServiceError,
    resource_in_use,
    runtime_validation,
    validation,
)
from dropfit_local.sagemaker.events import (
    ENDPOINT_STATE_CHANGE,
    TRAINING_JOB_STATE_CHANGE,
    EventPublisher,
    endpoint_detail,
    training_job_detail,
)
from dropfit_local.sagemaker.processing import ProcessingJobs
from dropfit_local.sagemaker.training import (
    METRIC_DEFINITIONS,
    TrainingFailure,
    channel_objects,
    channel_spec,
    client_error,
    final_metrics,
    fit,
    image_problem,
    read_channel,
    score_lines,
    split_s3_uri,
)
from dropfit_local.sagemaker.validation import validate

Params = Mapping[str, Any]

SERVERLESS_MAX_PAYLOAD = 4 * 1024 * 1024
REALTIME_MAX_PAYLOAD = 6 * 1024 * 1024
_IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
_DEFAULT_PAGE = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Stopped(Exception):
    """StopTrainingJob was called: the worker ends the job as Stopped."""


class _ShuttingDown(Exception):
    """The server is stopping: workers give up without touching state."""


class _DeployFailure(Exception):
    """A variant could not be loaded; the message is the endpoint's FailureReason."""


@dataclass
class _TrainingJob:
    description: dict[str, Any]
    stop_requested: bool = False


@dataclass(frozen=True)
class _Variant:
    name: str
    model: KnnModel
    weight: float
    max_payload: int
    description: dict[str, Any]


@dataclass
class _Endpoint:
    description: dict[str, Any]
    generation: int = 0
    """Bumped by every update/delete so a stale worker knows to drop its result."""
    serving: dict[str, _Variant] = field(default_factory=dict)
    """The variants answering invocations (the old ones while Updating)."""


class SageMakerBackend:
    """The control plane and runtime behind the HTTP server."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        s3: Any,
        events: Any,
        endpoint_delay_seconds: float,
        log: Callable[[str], None],
        faults_dir: Path | None = None,
        logs: Any | None = None,
    ) -> None:
        """``logs``: a CloudWatch Logs client for the jobs' and endpoints' logs (None: none)."""
        self.region = region
        self.account_id = account_id
        self._s3 = s3
        self._delay = endpoint_delay_seconds
        self._log = log
        self._faults_dir = faults_dir  # test-only fault injection (dropfit_local.faults)
        self._events = EventPublisher(events, log)
        self._cloudwatch = LogWriter(logs, log)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="local-sagemaker")
        self._jobs: dict[str, _TrainingJob] = {}
        self._models: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}
        self._loaded: dict[tuple[str, dt.datetime, str], KnnModel] = {}
        self._random = random.Random(0)
        session = botocore.session.get_session()
        self._control_model = session.get_service_model("sagemaker")
        self._runtime_model = session.get_service_model("sagemaker-runtime")
        self._operations: dict[str, Callable[[Params], dict[str, Any]]] = {
            "CreateTrainingJob": self._create_training_job,
            "DescribeTrainingJob": self._describe_training_job,
            "ListTrainingJobs": self._list_training_jobs,
            "StopTrainingJob": self._stop_training_job,
            "CreateModel": self._create_model,
            "DescribeModel": self._describe_model,
            "DeleteModel": self._delete_model,
            "ListModels": self._list_models,
            "CreateEndpointConfig": self._create_endpoint_config,
            "DescribeEndpointConfig": self._describe_endpoint_config,
            "DeleteEndpointConfig": self._delete_endpoint_config,
            "ListEndpointConfigs": self._list_endpoint_configs,
            "CreateEndpoint": self._create_endpoint,
            "UpdateEndpoint": self._update_endpoint,
            "DescribeEndpoint": self._describe_endpoint,
            "DeleteEndpoint": self._delete_endpoint,
            "ListEndpoints": self._list_endpoints,
            "AddTags": self._add_tags,
            "ListTags": self._list_tags,
            "DeleteTags": self._delete_tags,
        }
        self._processing = ProcessingJobs(
            arn=self._arn,
            s3=s3,
            events=self._events,
            tags=self._tags,
            lock=self._lock,
            submit=self._submit,
            closing=self._closing,
            log=log,
        )
        self._operations.update(self._processing.operations())

    def close(self) -> None:
        """Stop the workers (they abandon their work) and flush pending events."""
        self._closing.set()
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._events.close()

    # ------------------------------------------------------------------------ dispatch

    def call(self, operation: str, params: Params) -> dict[str, Any]:
        """Run one control-plane operation (the ``X-Amz-Target`` suffix) on JSON params."""
        handler = self._operations.get(operation)
        if handler is None:
            raise ServiceError(
                "UnknownOperationException",
                f"The local SageMaker does not implement {operation}",
            )
        message = validate(self._control_model.operation_model(operation).input_shape, params)
        if message:
            raise validation(message)
        return handler(params)

    def _arn(self, kind: str, name: str) -> str:
        # SageMaker lower-cases resource names in ARNs.
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            try:
                work(*args)
            except _ShuttingDown:
                pass
            except Exception:
                self._log(
                    f"[sagemaker] internal error in {work.__name__}:\n{traceback.format_exc()}"
                )

        if not self._closing.is_set():
            self._workers.submit(guarded)

    def _sleep(self) -> None:
        if self._closing.wait(self._delay):
            raise _ShuttingDown

    # ------------------------------------------------------------------- training jobs

    def _create_training_job(self, params: Params) -> dict[str, Any]:
        name = params["TrainingJobName"]
        arn = self._arn("training-job", name)
        algorithm = dict(params.get("AlgorithmSpecification") or {})
        if not algorithm.get("TrainingImage"):
            raise validation(
                "AlgorithmSpecification.TrainingImage is required by the local SageMaker"
            )
        channels = [channel["ChannelName"] for channel in params.get("InputDataConfig", [])]
        duplicates = sorted({channel for channel in channels if channels.count(channel) > 1})
        if duplicates:
            raise validation(f"Channel names must be unique, got {', '.join(duplicates)} twice")
        problem = image_problem(algorithm["TrainingImage"], self.region)
        if problem:
            raise validation(problem)
        for channel in params.get("InputDataConfig", []):
            self._check_channel_has_objects(channel, params["RoleArn"])
        algorithm.setdefault("TrainingInputMode", "File")
        algorithm.setdefault("MetricDefinitions", [dict(item) for item in METRIC_DEFINITIONS])
        algorithm.setdefault("EnableSageMakerMetricsTimeSeries", False)
        now = _now()
        description: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": arn,
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": dict(params.get("HyperParameters") or {}),
            "AlgorithmSpecification": algorithm,
            "RoleArn": params["RoleArn"],
            "InputDataConfig": copy.deepcopy(params.get("InputDataConfig", [])),
            "OutputDataConfig": dict(params["OutputDataConfig"]),
            "ResourceConfig": dict(
                params.get("ResourceConfig")
                or {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}
            ),
            "StoppingCondition": dict(
                params.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400}
            ),
            "CreationTime": now,
            "LastModifiedTime": now,
            "SecondaryStatusTransitions": [
                {
                    "Status": "Starting",
                    "StartTime": now,
                    "StatusMessage": "Starting the training job",
                }
            ],
            "EnableNetworkIsolation": params.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": params.get(
                "EnableInterContainerTrafficEncryption", False
            ),
            "EnableManagedSpotTraining": params.get("EnableManagedSpotTraining", False),
        }
        for optional in ("VpcConfig", "Environment", "RetryStrategy", "CheckpointConfig"):
            if optional in params:
                description[optional] = copy.deepcopy(params[optional])
        with self._lock:
            if name in self._jobs:
                raise resource_in_use(
                    "Training job names must be unique within an AWS account and region, and a "
                    f"training job with this name already exists ({arn})"
                )
            job = _TrainingJob(description)
            self._jobs[name] = job
            self._tags[arn] = [dict(tag) for tag in params.get("Tags", [])]
            self._publish_training(job)
        self._log(f"[sagemaker] {name} Starting - Starting the training job")
        self._submit(self._run_training, name)
        return {"TrainingJobArn": arn}

    def _check_channel_has_objects(self, channel: Mapping[str, Any], role: str) -> None:
        """CreateTrainingJob refuses an S3Prefix channel with no objects, as SageMaker does."""
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            return  # the job itself reports what it cannot read
        uri = source["S3Uri"]
        try:
            bucket, _ = split_s3_uri(uri)
            found = channel_objects(self._s3, channel_spec(channel))
        except (TrainingFailure, ValueError):
            return  # a channel the algorithm refuses fails the job with the algorithm's reason
        except (ClientError, BotoCoreError):
            found = []  # no such bucket, or not listable: AWS says the same
        if not found:
            raise validation(
                f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
                f"ensure that the bucket exists in the selected region ({self.region}), that "
                f'objects exist under that S3 prefix, and that the role "{role}" has '
                f'"s3:ListBucket" permissions on bucket "{bucket}".'
            )

    def _job(self, name: str) -> _TrainingJob:
        job = self._jobs.get(name)
        if job is None:
            raise validation("Requested resource not found.")
        return job

    def _describe_training_job(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._job(params["TrainingJobName"]).description)

    def _list_training_jobs(self, params: Params) -> dict[str, Any]:
        keys = (
            "TrainingJobName",
            "TrainingJobArn",
            "CreationTime",
            "TrainingEndTime",
            "LastModifiedTime",
            "TrainingJobStatus",
            "SecondaryStatus",
        )
        with self._lock:
            items = [_pick(job.description, keys) for job in self._jobs.values()]
        page, token = _paginate(items, params, "TrainingJobName", "TrainingJobStatus")
        return _with_token({"TrainingJobSummaries": page}, token)

    def _stop_training_job(self, params: Params) -> dict[str, Any]:
        with self._lock:
            job = self._job(params["TrainingJobName"])
            status = job.description["TrainingJobStatus"]
            if status != "InProgress":
                raise validation(
                    f"The request was rejected because the training job is in status {status}."
                )
            job.stop_requested = True
            self._transition(job, "Stopping", "Stopping the training job", status="Stopping")
        return {}

    def _publish_training(self, job: _TrainingJob) -> None:
        description = job.description
        detail = training_job_detail(description, self._tags.get(description["TrainingJobArn"], []))
        self._events.publish(TRAINING_JOB_STATE_CHANGE, description["TrainingJobArn"], detail)

    def _transition(
        self, job: _TrainingJob, secondary: str, message: str, status: str | None = None
    ) -> None:
        """Record a secondary-status change (caller holds the lock)."""
        now = _now()
        description = job.description
        transitions = description["SecondaryStatusTransitions"]
        transitions[-1]["EndTime"] = now
        transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
        description["SecondaryStatus"] = secondary
        description["LastModifiedTime"] = now
        if status is not None:
            description["TrainingJobStatus"] = status
            self._publish_training(job)
        self._log(f"[sagemaker] {description['TrainingJobName']} {secondary} - {message}")

    def _phase(self, name: str, secondary: str, message: str) -> dict[str, Any]:
        """Enter a phase of a running job; returns a snapshot of its description."""
        with self._lock:
            if self._closing.is_set():
                raise _ShuttingDown
            job = self._jobs[name]
            if job.stop_requested:
                raise _Stopped
            if secondary == "Downloading":
                job.description["TrainingStartTime"] = _now()
            self._transition(job, secondary, message)
            return copy.deepcopy(job.description)

    def _run_training(self, name: str) -> None:
        stream = ""
        try:
            spec = self._phase(name, "Downloading", "Downloading input data")
            stream = training_stream(name, spec["TrainingStartTime"])
            data = dict(read_channel(self._s3, channel) for channel in spec["InputDataConfig"])
            self._phase(
                name, "Training", "Training image download completed. Training in progress."
            )
            self._job_log(stream, ["Docker entrypoint called with argument(s): train"])
            self._job_log(stream, [algorithm_line(_provided(spec["HyperParameters"]))])
            result = fit(spec["HyperParameters"], data)
            lines = [*result.notes, *score_lines(result.scores)]
            for line in lines:
                self._log(f"[sagemaker] {name} {line}")
            self._job_log(stream, [algorithm_line(line) for line in lines])
            self._phase(name, "Uploading", "Uploading generated training model")
            artifact = self._upload_artifact(spec, result.model.to_artifact())
        except _Stopped:
            self._finish(name, "Stopped", "Training job stopped")
        except TrainingFailure as failure:
            self._job_log(stream, [algorithm_line(str(failure), "ERROR")])
            self._finish(name, "Failed", "Training job failed", reason=str(failure))
        except _ShuttingDown:
            raise
        except Exception as exc:
            self._log(f"[sagemaker] {name} internal error:\n{traceback.format_exc()}")
            self._finish(
                name, "Failed", "Training job failed", reason=f"InternalServerError: {exc}"
            )
        else:
            self._finish(
                name,
                "Completed",
                "Training job completed",
                artifact=artifact,
                metrics=final_metrics(result.scores),
            )

    def _job_log(self, stream: str, lines: list[str]) -> None:
        if stream:
            self._cloudwatch.write(TRAINING_GROUP, stream, lines)

    def _upload_artifact(self, spec: Mapping[str, Any], artifact: bytes) -> str:
        output = spec["OutputDataConfig"]["S3OutputPath"]
        try:
            bucket, prefix = split_s3_uri(output)
        except ValueError as exc:
            raise client_error(f"Invalid S3OutputPath: {exc}") from None
        key = "/".join(
            part for part in (prefix.strip("/"), spec["TrainingJobName"], "output") if part
        )
        key += "/model.tar.gz"
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=artifact)
        except (ClientError, BotoCoreError) as exc:
            raise client_error(f"Artifact upload failed: s3://{bucket}/{key}: {exc}") from None
        return f"s3://{bucket}/{key}"

    def _finish(
        self,
        name: str,
        status: str,
        message: str,
        *,
        reason: str | None = None,
        artifact: str | None = None,
        metrics: Iterable[tuple[str, float]] = (),
    ) -> None:
        with self._lock:
            if self._closing.is_set():
                raise _ShuttingDown
            job = self._jobs[name]
            if status == "Completed" and job.stop_requested:
                status, message, artifact = "Stopped", "Training job stopped", None
            now = _now()
            description = job.description
            description["TrainingEndTime"] = now
            start = description.get("TrainingStartTime", description["CreationTime"])
            seconds = max(1, math.ceil((now - start).total_seconds()))
            description["TrainingTimeInSeconds"] = seconds
            description["BillableTimeInSeconds"] = seconds
            if reason:
                description["FailureReason"] = reason
            if artifact:
                description["ModelArtifacts"] = {"S3ModelArtifacts": artifact}
            description["FinalMetricDataList"] = [
                {"MetricName": metric, "Value": value, "Timestamp": now}
                for metric, value in metrics
            ]
            self._transition(job, status, message, status=status)
        if reason:
            self._log(f"[sagemaker] {name} FailureReason: {reason}")

    # -------------------------------------------------------------------------- models

    def _create_model(self, params: Params) -> dict[str, Any]:
        name = params["ModelName"]
        arn = self._arn("model", name)
        containers = [params["PrimaryContainer"]] if "PrimaryContainer" in params else []
        containers += list(params.get("Containers", []))
        if len(containers) != 1 or not containers[0].get("Image"):
            raise validation(
                "The local SageMaker hosts single-container models: give PrimaryContainer "
                "(or one entry in Containers) with an Image"
            )
        url = containers[0].get("ModelDataUrl")
        if url:
            self._check_model_data(url, params.get("ExecutionRoleArn", ""))
        description: dict[str, Any] = {
            "ModelName": name,
            "ModelArn": arn,
            "CreationTime": _now(),
            "EnableNetworkIsolation": params.get("EnableNetworkIsolation", False),
        }
        for key in ("PrimaryContainer", "Containers", "ExecutionRoleArn", "VpcConfig"):
            if key in params:
                description[key] = copy.deepcopy(params[key])
        with self._lock:
            if name in self._models:
                raise validation(f'Cannot create already existing model "{arn}".')
            self._models[name] = description
            self._tags[arn] = [dict(tag) for tag in params.get("Tags", [])]
        return {"ModelArn": arn}

    def _check_model_data(self, url: str, role: str) -> None:
        """CreateModel checks that the model data is readable, as SageMaker does."""
        try:
            bucket, key = split_s3_uri(url)
            self._s3.head_object(Bucket=bucket, Key=key)
        except (ValueError, ClientError, BotoCoreError):
            raise validation(
                f'Could not access model data at {url}. Please ensure that the role "{role}" '
                "exists and that its trust relationship policy allows the action "
                '"sts:AssumeRole" for the service principal "sagemaker.amazonaws.com". Also '
                'ensure that the role has "s3:GetObject" permissions and that the object is '
                f"located in {self.region}."
            ) from None

    def _model(self, name: str) -> dict[str, Any]:
        model = self._models.get(name)
        if model is None:
            raise validation(f'Could not find model "{self._arn("model", name)}".')
        return model

    def _describe_model(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._model(params["ModelName"]))

    def _delete_model(self, params: Params) -> dict[str, Any]:
        with self._lock:
            model = self._model(params["ModelName"])
            del self._models[params["ModelName"]]
            self._tags.pop(model["ModelArn"], None)
        return {}

    def _list_models(self, params: Params) -> dict[str, Any]:
        with self._lock:
            items = [
                _pick(m, ("ModelName", "ModelArn", "CreationTime")) for m in self._models.values()
            ]
        page, token = _paginate(items, params, "ModelName")
        return _with_token({"Models": page}, token)

    # ------------------------------------------------------------------ endpoint configs

    def _create_endpoint_config(self, params: Params) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        arn = self._arn("endpoint-config", name)
        variants = copy.deepcopy(params["ProductionVariants"])
        names = [variant["VariantName"] for variant in variants]
        if len(set(names)) != len(names):
            raise validation(f"Variant names must be unique within endpoint configuration {arn}")
        for variant in variants:
            _check_variant(variant)
        with self._lock:
            for variant in variants:
                self._model(variant["ModelName"])
            if name in self._configs:
                raise validation(f'Cannot create already existing endpoint configuration "{arn}".')
            description: dict[str, Any] = {
                "EndpointConfigName": name,
                "EndpointConfigArn": arn,
                "ProductionVariants": variants,
                "CreationTime": _now(),
            }
            for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig"):
                if key in params:
                    description[key] = copy.deepcopy(params[key])
            self._configs[name] = description
            self._tags[arn] = [dict(tag) for tag in params.get("Tags", [])]
        return {"EndpointConfigArn": arn}

    def _config(self, name: str) -> dict[str, Any]:
        config = self._configs.get(name)
        if config is None:
            arn = self._arn("endpoint-config", name)
            raise validation(f'Could not find endpoint configuration "{arn}".')
        return config

    def _describe_endpoint_config(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._config(params["EndpointConfigName"]))

    def _delete_endpoint_config(self, params: Params) -> dict[str, Any]:
        with self._lock:
            config = self._config(params["EndpointConfigName"])
            del self._configs[params["EndpointConfigName"]]
            self._tags.pop(config["EndpointConfigArn"], None)
            # Live endpoints keep their loaded models; only the cache entry goes.
            for key in [key for key in self._loaded if key[0] == config["EndpointConfigArn"]]:
                del self._loaded[key]
        return {}

    def _list_endpoint_configs(self, params: Params) -> dict[str, Any]:
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        with self._lock:
            items = [_pick(config, keys) for config in self._configs.values()]
        page, token = _paginate(items, params, "EndpointConfigName")
        return _with_token({"EndpointConfigs": page}, token)

    # ------------------------------------------------------------------------ endpoints

    def _endpoint(self, name: str) -> _Endpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise validation(f'Could not find endpoint "{self._arn("endpoint", name)}".')
        return endpoint

    def _publish_endpoint(self, endpoint: _Endpoint) -> None:
        description = endpoint.description
        tags = self._tags.get(description["EndpointArn"], [])
        detail = endpoint_detail(description, tags)
        self._events.publish(ENDPOINT_STATE_CHANGE, description["EndpointArn"], detail)
        reason = f" ({description['FailureReason']})" if "FailureReason" in description else ""
        self._log(
            f"[sagemaker] endpoint {description['EndpointName']} "
            f"{description['EndpointStatus']} on {description['EndpointConfigName']}{reason}"
        )

    def _create_endpoint(self, params: Params) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        arn = self._arn("endpoint", name)
        with self._lock:
            config = copy.deepcopy(self._config(config_name))
            if name in self._endpoints:
                raise validation(f'Cannot create already existing endpoint "{arn}".')
            now = _now()
            endpoint = _Endpoint(
                {
                    "EndpointName": name,
                    "EndpointArn": arn,
                    "EndpointConfigName": config_name,
                    "EndpointStatus": "Creating",
                    "CreationTime": now,
                    "LastModifiedTime": now,
                    "PendingDeploymentSummary": {
                        "EndpointConfigName": config_name,
                        "StartTime": now,
                    },
                }
            )
            self._endpoints[name] = endpoint
            self._tags[arn] = [dict(tag) for tag in params.get("Tags", [])]
            self._publish_endpoint(endpoint)
        self._submit(self._deploy, name, endpoint.generation, config)
        return {"EndpointArn": arn}

    def _update_endpoint(self, params: Params) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        with self._lock:
            endpoint = self._endpoint(name)
            config = copy.deepcopy(self._config(config_name))
            description = endpoint.description
            status = description["EndpointStatus"]
            if status in _IN_PROGRESS:
                raise validation(
                    f'Cannot update in-progress endpoint "{description["EndpointArn"]}".'
                )
            if status == "Failed":
                raise validation(f'Cannot update failed endpoint "{description["EndpointArn"]}".')
            now = _now()
            endpoint.generation += 1
            # EndpointConfigName stays the serving config until the new one is InService;
            # the config being deployed shows in PendingDeploymentSummary.
            description.update(
                EndpointStatus="Updating",
                LastModifiedTime=now,
                PendingDeploymentSummary={"EndpointConfigName": config_name, "StartTime": now},
            )
            self._publish_endpoint(endpoint)
            generation = endpoint.generation
        self._submit(self._deploy, name, generation, config)
        return {"EndpointArn": description["EndpointArn"]}

    def _deploy(self, name: str, generation: int, config: dict[str, Any]) -> None:
        """Worker: load the config's models after the delay, then go InService (or not)."""
        self._sleep()
        failure: str | None = None
        try:
            self._injected_fault(name, config)
            variants = self._load_variants(name, config)
        except _DeployFailure as exc:
            failure, variants = str(exc), {}
        self._endpoint_log(name, config, variants, failure)
        with self._lock:
            endpoint = self._endpoints.get(name)
            if self._closing.is_set() or endpoint is None or endpoint.generation != generation:
                return  # deleted or superseded while loading
            description = endpoint.description
            description.pop("PendingDeploymentSummary", None)
            description["LastModifiedTime"] = _now()
            if failure is None:
                endpoint.serving = variants
                description["EndpointConfigName"] = config["EndpointConfigName"]
                description.pop("FailureReason", None)
                description["EndpointStatus"] = "InService"
                description["ProductionVariants"] = [v.description for v in variants.values()]
            elif endpoint.serving:
                # A failed update rolls back: the previous config keeps serving.
                description["EndpointStatus"] = "InService"
                description["FailureReason"] = failure
            else:
                description["EndpointStatus"] = "Failed"
                description["FailureReason"] = failure
            self._publish_endpoint(endpoint)

    def _endpoint_log(
        self,
        name: str,
        config: Mapping[str, Any],
        variants: Mapping[str, _Variant],
        failure: str | None,
    ) -> None:
        """Each variant's container log: the model it serves, or why it could not start."""
        for spec in config["ProductionVariants"]:
            variant = variants.get(spec["VariantName"])
            if variant is None:
                lines = [algorithm_line(failure or "not started", "ERROR")]
            else:
                model = variant.model
                lines = [
                    algorithm_line(
                        f"Loaded the k-NN model: k={model.k}, predictor_type="
                        f"{model.predictor_type}, {len(model.points)} points of "
                        f"{model.feature_dim} features"
                    ),
                    algorithm_line("Serving on port 8080: /ping and /invocations"),
                ]
            lines.insert(0, "Docker entrypoint called with argument(s): serve")
            group, stream = endpoint_group(name), endpoint_stream(spec["VariantName"])
            self._cloudwatch.write(group, stream, lines)

    def _injected_fault(self, endpoint: str, config: Mapping[str, Any]) -> None:
        """Fail (or hold) this deployment if a test injected an ``endpoint:`` fault (off by
        default)."""
        if self._faults_dir is None:
            return
        fault = faults.claim(self._faults_dir, f"endpoint:{endpoint}")
        if fault is not None and fault.hold_seconds:
            self._log(f"[sagemaker] endpoint {endpoint} held {fault.hold_seconds} s (test only)")
            if self._closing.wait(fault.hold_seconds):
                raise _ShuttingDown
        elif fault is not None:
            variant = config["ProductionVariants"][0]["VariantName"]
            self._log(f"[sagemaker] endpoint {endpoint} variant {variant}: {fault.message}")
            raise _unhealthy(variant)

    def _load_variants(self, endpoint: str, config: Mapping[str, Any]) -> dict[str, _Variant]:
        variants: dict[str, _Variant] = {}
        for spec in config["ProductionVariants"]:
            variant = spec["VariantName"]
            with self._lock:
                model = copy.deepcopy(self._models.get(spec["ModelName"]))
                cache_key = (config["EndpointConfigArn"], config["CreationTime"], variant)
                loaded = self._loaded.get(cache_key)
            if model is None:
                raise _DeployFailure(
                    f'Could not find model "{self._arn("model", spec["ModelName"])}".'
                )
            container = model.get("PrimaryContainer") or model["Containers"][0]
            if loaded is None:
                loaded = self._load_model(endpoint, variant, container)
                with self._lock:
                    self._loaded[cache_key] = loaded
            serverless = "ServerlessConfig" in spec
            described: dict[str, Any] = {
                "VariantName": variant,
                "DeployedImages": [
                    {
                        "SpecifiedImage": container["Image"],
                        "ResolvedImage": container["Image"],
                        "ResolutionTime": _now(),
                    }
                ],
                "CurrentWeight": float(spec.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(spec.get("InitialVariantWeight", 1.0)),
            }
            if serverless:
                described["CurrentServerlessConfig"] = dict(spec["ServerlessConfig"])
                described["DesiredServerlessConfig"] = dict(spec["ServerlessConfig"])
            else:
                described["CurrentInstanceCount"] = spec.get("InitialInstanceCount", 1)
                described["DesiredInstanceCount"] = spec.get("InitialInstanceCount", 1)
            variants[variant] = _Variant(
                name=variant,
                model=loaded,
                weight=described["CurrentWeight"],
                max_payload=SERVERLESS_MAX_PAYLOAD if serverless else REALTIME_MAX_PAYLOAD,
                description=described,
            )
        return variants

    def _load_model(self, endpoint: str, variant: str, container: Mapping[str, Any]) -> KnnModel:
        unhealthy = _unhealthy(variant)
        url = container.get("ModelDataUrl")
        problem = image_problem(container["Image"], self.region)
        if problem:
            self._log(f"[sagemaker] endpoint {endpoint} variant {variant}: {problem}")
            raise unhealthy
        if not url:
            self._log(f"[sagemaker] endpoint {endpoint} variant {variant}: no ModelDataUrl")
            raise unhealthy
        try:
            bucket, key = split_s3_uri(url)
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ValueError, ClientError, BotoCoreError):
            bucket, _, key = url.removeprefix("s3://").partition("/")
            raise _DeployFailure(
                f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure "
                "that there is an object located at the URL and that the role passed to "
                "CreateModel has permissions to download the model."
            ) from None
        try:
            return KnnModel.from_artifact(data)
        except ModelArtifactError as exc:
            self._log(f"[sagemaker] endpoint {endpoint} variant {variant}: {exc}")
            raise unhealthy from None

    def _describe_endpoint(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._endpoint(params["EndpointName"]).description)

    def _delete_endpoint(self, params: Params) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            endpoint = self._endpoint(name)
            if endpoint.description["EndpointStatus"] == "Deleting":
                return {}
            endpoint.generation += 1
            endpoint.serving = {}
            endpoint.description.update(EndpointStatus="Deleting", LastModifiedTime=_now())
            self._publish_endpoint(endpoint)
            generation = endpoint.generation
        self._submit(self._remove_endpoint, name, generation)
        return {}

    def _remove_endpoint(self, name: str, generation: int) -> None:
        self._sleep()
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is not None and endpoint.generation == generation:
                del self._endpoints[name]
                self._tags.pop(endpoint.description["EndpointArn"], None)

    def _list_endpoints(self, params: Params) -> dict[str, Any]:
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        with self._lock:
            items = [_pick(e.description, keys) for e in self._endpoints.values()]
        page, token = _paginate(items, params, "EndpointName", "EndpointStatus")
        return _with_token({"Endpoints": page}, token)

    # ----------------------------------------------------------------------------- tags

    def _tagged(self, arn: str) -> list[dict[str, str]]:
        tags = self._tags.get(arn)
        if tags is None:
            raise validation(f"Resource {arn} does not exist.")
        return tags

    def _add_tags(self, params: Params) -> dict[str, Any]:
        with self._lock:
            tags = self._tagged(params["ResourceArn"])
            added = {tag["Key"]: tag["Value"] for tag in params["Tags"]}
            tags[:] = [tag for tag in tags if tag["Key"] not in added]
            tags.extend({"Key": key, "Value": value} for key, value in added.items())
            return {"Tags": copy.deepcopy(tags)}

    def _list_tags(self, params: Params) -> dict[str, Any]:
        with self._lock:
            return {"Tags": copy.deepcopy(self._tagged(params["ResourceArn"]))}

    def _delete_tags(self, params: Params) -> dict[str, Any]:
        with self._lock:
            tags = self._tagged(params["ResourceArn"])
            tags[:] = [tag for tag in tags if tag["Key"] not in set(params["TagKeys"])]
        return {}

    # -------------------------------------------------------------------------- runtime

    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        *,
        content_type: str | None,
        accept: str | None,
        target_variant: str | None,
        request_id: str,
    ) -> tuple[bytes, str, str]:
        """InvokeEndpoint: returns (body, content type, invoked production variant)."""
        message = validate(
            self._runtime_model.operation_model("InvokeEndpoint").input_shape,
            {"EndpointName": endpoint_name, "Body": b""}
            | ({"TargetVariant": target_variant} if target_variant else {}),
        )
        if message:
            raise runtime_validation(message)
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            serving = dict(endpoint.serving) if endpoint else {}
            if not serving:
                raise runtime_validation(
                    f"Endpoint {endpoint_name} of account {self.account_id} not found."
                )
            if target_variant:
                variant = serving.get(target_variant)
                if variant is None:
                    raise runtime_validation(
                        f"Variant {target_variant} not found for endpoint {endpoint_name}."
                    )
            else:
                variants = list(serving.values())
                weights = [max(v.weight, 0.0) for v in variants]
                total = sum(weights)
                variant = self._random.choices(variants, weights if total > 0 else None)[0]
        if len(body) > variant.max_payload:
            raise runtime_validation(f"Request {request_id} has oversize body.")
        try:
            payload, media_type = inference.invoke(variant.model, body, content_type, accept)
        except InferenceInputError as exc:
            raise self._model_error(endpoint_name, exc.status_code, str(exc)) from None
        except Exception as exc:  # the container would answer 500
            self._log(
                f"[sagemaker] endpoint {endpoint_name} inference error:\n{traceback.format_exc()}"
            )
            raise self._model_error(endpoint_name, 500, str(exc)) from None
        return payload, media_type, variant.name

    def _model_error(self, endpoint: str, status: int, original: str) -> ServiceError:
        """The runtime's ModelError: the container answered ``status`` with ``original``."""
        kind = "client" if status < 500 else "server"
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        console = (
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logEventViewer:group={group}"
        )
        return ServiceError(
            "ModelError",
            f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See {console} in account {self.account_id} for more information.",
            status=424,
            fields={
                "OriginalStatusCode": status,
                "OriginalMessage": original,
                "LogStreamArn": f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}",
                "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            },
        )


def _unhealthy(variant: str) -> _DeployFailure:
    """What SageMaker reports when a variant's container cannot load its model."""
    return _DeployFailure(
        f"The primary container for production variant {variant} did not pass the ping "
        "health check. Please check CloudWatch logs for this endpoint."
    )


def _check_variant(variant: Mapping[str, Any]) -> None:
    name = variant["VariantName"]
    serverless = variant.get("ServerlessConfig")
    if serverless and variant.get("InstanceType"):
        raise validation(
            f"Production variant {name} cannot have both an InstanceType and a ServerlessConfig"
        )
    if not serverless and not variant.get("InstanceType"):
        raise validation(f"Production variant {name} needs an InstanceType or a ServerlessConfig")
    if serverless:
        memory = serverless.get("MemorySizeInMB")
        if memory is None or serverless.get("MaxConcurrency") is None:
            raise validation(
                f"ServerlessConfig of production variant {name} needs MemorySizeInMB and "
                "MaxConcurrency"
            )
        if memory % 1024:
            raise validation(
                f"Value '{memory}' for MemorySizeInMB of production variant {name} is invalid: "
                "it must be one of 1024, 2048, 3072, 4096, 5120, 6144"
            )


def _pick(description: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: copy.deepcopy(description[key]) for key in keys if key in description}


def _paginate(
    items: list[dict[str, Any]], params: Params, name_key: str, status_key: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Filter (NameContains, StatusEquals, CreationTime bounds), sort and page a List call."""
    if "NameContains" in params:
        items = [item for item in items if params["NameContains"] in item[name_key]]
    if status_key and "StatusEquals" in params:
        items = [item for item in items if item.get(status_key) == params["StatusEquals"]]
    for bound, keep in (("CreationTimeAfter", 1), ("CreationTimeBefore", -1)):
        if bound in params:
            limit = _as_datetime(params[bound])
            items = [i for i in items if (i["CreationTime"] - limit).total_seconds() * keep > 0]
    sort_key = {"Name": name_key, "Status": status_key or name_key}.get(
        params.get("SortBy", "CreationTime"), "CreationTime"
    )
    items.sort(
        key=lambda item: item.get(sort_key) or "", reverse=params.get("SortOrder") != "Ascending"
    )
    token = params.get("NextToken")
    if token is not None and not (isinstance(token, str) and token.isdigit()):
        raise validation("The NextToken is not valid.")
    start = int(token or 0)
    size = int(params.get("MaxResults", _DEFAULT_PAGE))
    page = items[start : start + size]
    return page, str(start + size) if start + size < len(items) else None


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def _with_token(result: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        result["NextToken"] = token
    return result


def _provided(hyperparameters: Mapping[str, str]) -> str:
    """The built-in's log line of the job's hyperparameters."""
    shown = ", ".join(f"{key!r}: {value!r}" for key, value in sorted(hyperparameters.items()))
    return (
        "Reading provided configuration from /opt/ml/input/config/hyperparameters.json: "
        f"{{{shown}}}"
    )
