"""The whole Dropfit pipeline on one machine, wired from template.yaml.

``LocalStack.start()`` brings up, in order:

1. moto (``ThreadedMotoServer``) for S3, EventBridge, SQS, DynamoDB, SNS and STS;
2. the template's resources in it: the bucket (versioning, EventBridge notifications), the table,
   topics and queues, and for every ``EventBridgeRule`` event a rule with the template's pattern
   targeting a delivery queue of its own (moto matches the patterns);
3. the local SageMaker (``dropfit_local.sagemaker``), which puts its state-change events on
   moto's default bus;
4. a warm runtime per function (``lambda_runtime``), all started at once, each importing its
   handler right away as provisioned concurrency does (``provisioned=False``: on demand, at the
   first invocation);
5. a poller per delivery queue (``event_delivery``) and the HTTP API (``api_gateway``);

with, when asked (``fault_injection=True``, test only), the faults folder of
``dropfit_local.faults`` wired into the runtimes and the local SageMaker;

then writes ``outputs.json`` (the template's Outputs, resolved to local values, plus
``AwsEndpointUrl``). ``stop()`` undoes all of it; nothing started is left running.

moto's state belongs to the Python process, not to a server: ``start()`` resets it, so run one
stack per process at a time (the end-to-end tests run theirs in a child process). A second stack
in the same account and region (test only, ``join``) starts neither moto nor a SageMaker: it
creates its own resources, under its own stack name, in those of a running stack.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from dropfit_cli.api import ApiClient, Auth, Bearer, NoAuth, SigV4
from dropfit_local import dynamodb_atomic, faults, s3_sequencer
from dropfit_local.api_gateway import LocalHttpApi
from dropfit_local.authorizers import LOCAL_CREDENTIALS, LocalIssuer, authorizer_for
from dropfit_local.event_delivery import (
    DEFAULT_RETRY_DELAYS,
    DEFAULT_RULE_RETRY_ATTEMPTS,
    DeliveryTarget,
    QueuePoller,
    start_pollers,
    stop_pollers,
)
from dropfit_local.lambda_runtime import (
    InvocationResult,
    LambdaFunction,
    RuntimeConfig,
    lambda_environment,
    start_functions,
    write_bootstrap,
)
from dropfit_local.sagemaker import LocalSageMaker
from dropfit_local.sam_local import docker_gateway
from dropfit_local.template import ApiAuthSpec, EventRule, FunctionSpec, StackModel, read_stack

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEFAULT_AWS_PORT = 5000
DEFAULT_API_PORT = 3000
DEFAULT_SAGEMAKER_PORT = 5010
DEFAULT_STACK_NAME = "dropfit-local"
DELIVERY_TARGET_ID = "local-delivery"
# The whole event as the target input. Real EventBridge gives the same event with or without
# this transformer; moto drops "account" from PutEvents events unless the input is transformed.
WHOLE_EVENT = {"InputTemplate": "<aws.events.event.json>"}

_print_lock = threading.Lock()


def console(line: str) -> None:
    """Print one log line whole, whichever thread logs it."""
    with _print_lock:
        print(line, flush=True)


@dataclass(frozen=True)
class JoinedStack:
    """A running stack whose moto and local SageMaker another stack uses (test only)."""

    stack_name: str
    aws_endpoint_url: str
    sagemaker_endpoint_url: str


class LocalStack:
    """Dropfit's local stack; use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        root: Path = ROOT,
        template: Path | None = None,
        aws_port: int = DEFAULT_AWS_PORT,
        api_port: int = DEFAULT_API_PORT,
        sagemaker_port: int = DEFAULT_SAGEMAKER_PORT,
        parameters: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        runtime_concurrency: int = 1,
        function_concurrency: Mapping[str, int] | None = None,
        fault_injection: bool = False,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        endpoint_delay_seconds: float = 0.3,
        host: str = HOST,
        log: Callable[[str], None] = console,
        provisioned: bool = True,
        stack_name: str = DEFAULT_STACK_NAME,
        join: JoinedStack | None = None,
    ) -> None:
        if join is not None and join.stack_name == stack_name:
            raise ValueError(
                f"stack name {stack_name!r} is the joined stack's: give this one another name"
            )
        self.stack_name = stack_name
        self._join = join
        self.host = _check_host(host)
        self.root = root
        self.template_path = template or root / "template.yaml"
        self.state_dir = state_dir or root / ".local"
        self._ports = {"aws": aws_port, "api": api_port, "sagemaker": sagemaker_port}
        self._parameters = dict(parameters or {})
        self._concurrency = runtime_concurrency
        # Runtimes of one function (by logical id or log label), overriding runtime_concurrency.
        self._function_concurrency = dict(function_concurrency or {})
        self._fault_injection = fault_injection
        self._runtimes: dict[str, int] = {}
        self._retry_delays = tuple(retry_delays)
        self._endpoint_delay = endpoint_delay_seconds
        # Runtimes run their INIT at start, as provisioned concurrency does (else on demand).
        self._provisioned = provisioned
        self.log = log
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.model: StackModel | None = None
        self.functions: dict[str, LambdaFunction] = {}
        self.pollers: list[QueuePoller] = []
        self.delivery_queues: dict[tuple[str, str], str] = {}
        self.aws_endpoint_url = ""
        self.sagemaker_url = ""
        self.api_url = ""
        self.api_auth = ApiAuthSpec()
        # With ApiAuth=JWT, the local issuer whose keys sign and verify tokens.
        self.issuer: LocalIssuer | None = None
        self.outputs: dict[str, Any] = {}
        self.startup_seconds = 0.0

    # -- convenience accessors for the outputs

    @property
    def bucket_name(self) -> str:
        return str(self.outputs["BucketName"])

    @property
    def incoming_prefix(self) -> str:
        return str(self.outputs.get("IncomingPrefix", "incoming/"))

    @property
    def outputs_path(self) -> Path:
        return self.state_dir / "outputs.json"

    @property
    def faults_dir(self) -> Path | None:
        """Where injected faults are read (``dropfit_local.faults``); None unless enabled."""
        return self.state_dir / "faults" if self._fault_injection else None

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the local endpoints (sagemaker included)."""
        assert self.model is not None, "start() the stack first"
        endpoint = self.sagemaker_url if service.startswith("sagemaker") else self.aws_endpoint_url
        make_client: Callable[..., Any] = boto3.client  # the service name is not a literal here
        return make_client(
            service,
            endpoint_url=endpoint,
            region_name=self.model.region,
            aws_access_key_id=LOCAL_CREDENTIALS.access_key,
            aws_secret_access_key=LOCAL_CREDENTIALS.secret_key,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    # -- lifecycle

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything (see the module docstring); on any failure, stop what started."""
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self.log(f"[stack] ready in {self.startup_seconds:.2f} s; outputs in {self.outputs_path}")

    def stop(self) -> None:
        """Stop every server, thread and process this stack started (last started first)."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                self.log(f"[stack] stopping {name} failed: {error}")
        self.functions.clear()
        self.pollers.clear()

    def _start(self) -> None:
        # moto's werkzeug server logs every request; the stack logs what matters instead.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._join is None:
            self._start_moto()
        else:
            self.aws_endpoint_url = self._join.aws_endpoint_url
            self.log(
                f"[stack] JOINED (test only): the moto and SageMaker of {self._join.stack_name}"
            )

        self.model = model = read_stack(
            self.template_path,
            parameters=self._parameters,
            pseudo_parameters={"AWS::StackName": self.stack_name},
            aws_endpoint_url=self.aws_endpoint_url,
        )
        self._create_resources(model)
        self._runtimes = runtime_counts(model, self._concurrency, self._function_concurrency)
        self._prepare_faults()
        if self._join is None:
            self._start_sagemaker(model)
        else:
            self.sagemaker_url = self._join.sagemaker_endpoint_url

        self._start_functions(model)
        self._start_delivery(model)
        self._start_api(model)
        self._write_outputs(model)

    def _start_moto(self) -> None:
        _check_port_free(self.host, self._ports["aws"])
        s3_sequencer.install()  # S3's events order a key's uploads; moto's sequencer is constant
        dynamodb_atomic.install()  # moto's UpdateItem shows half-written items to other threads
        moto = ThreadedMotoServer(ip_address=self.host, port=self._ports["aws"], verbose=False)
        moto.start()
        self._stops.append(("moto", moto.stop))
        host, port = moto.get_host_and_port()
        self.aws_endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start from an empty account.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.aws_endpoint_url}/moto-api/reset", method="POST"),
            timeout=10,
        ).close()
        self.log(f"[stack] moto listening on {self.aws_endpoint_url}")

    def _start_sagemaker(self, model: StackModel) -> None:
        sagemaker = LocalSageMaker(
            region=model.region,
            account_id=model.account_id,
            s3_endpoint_url=self.aws_endpoint_url,
            events_endpoint_url=self.aws_endpoint_url,
            logs_endpoint_url=self.aws_endpoint_url,
            host=self.host,
            port=self._ports["sagemaker"],
            endpoint_delay_seconds=self._endpoint_delay,
            log=self.log,
            faults_dir=self.faults_dir,
        )
        sagemaker.start()
        self._stops.append(("local SageMaker", sagemaker.stop))
        self.sagemaker_url = sagemaker.url

    # -- resources

    def _create_resources(self, model: StackModel) -> None:
        s3, dynamodb = self.client("s3"), self.client("dynamodb")
        sns, sqs, events = self.client("sns"), self.client("sqs"), self.client("events")
        for bucket in model.buckets:
            s3.create_bucket(Bucket=bucket.name)
            if bucket.versioning:
                s3.put_bucket_versioning(
                    Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"}
                )
            if bucket.eventbridge:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket.name,
                    NotificationConfiguration={"EventBridgeConfiguration": {}},
                )
            self.log(
                f"[stack] bucket {bucket.name} (versioning={bucket.versioning}, "
                f"EventBridge notifications={bucket.eventbridge})"
            )
        for table in model.tables:
            dynamodb.create_table(**table.create_arguments)
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
            self.log(f"[stack] table {table.name}")
        for topic in model.topics:
            sns.create_topic(Name=topic.name, Attributes=topic.attributes)
            self.log(f"[stack] topic {topic.arn}")
        for queue in model.queues:
            url = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
            if url != queue.url:
                raise RuntimeError(f"moto named queue {queue.name} {url}, expected {queue.url}")
            self.log(f"[stack] queue {queue.url}")
        for function in model.functions:
            for rule in function.rules:
                self._create_rule(events, sqs, model, rule)

    def _create_rule(self, events: Any, sqs: Any, model: StackModel, rule: EventRule) -> None:
        stack_name = model.resolver.pseudo["AWS::StackName"]
        queue_name = f"{stack_name}-{rule.function_id}-{rule.event_id}"[:80]
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        if rule.event_bus != "default":
            with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
                events.create_event_bus(Name=rule.event_bus)
        events.put_rule(
            Name=rule.rule_name,
            EventBusName=rule.event_bus,
            EventPattern=json.dumps(rule.pattern),
            State="ENABLED",
        )
        events.put_targets(
            Rule=rule.rule_name,
            EventBusName=rule.event_bus,
            Targets=[{"Id": DELIVERY_TARGET_ID, "Arn": arn, "InputTransformer": WHOLE_EVENT}],
        )
        self.delivery_queues[(rule.function_id, rule.event_id)] = url
        self.log(f"[stack] rule {rule.rule_name} -> {queue_name}: {json.dumps(rule.pattern)}")

    # -- fault injection (test only)

    def _prepare_faults(self) -> None:
        """Fault injection (test only): an empty faults folder, and the runtimes' wrapper."""
        if self.faults_dir is None:
            return
        faults.clear(self.faults_dir)  # faults left by an earlier run must not fire
        faults.install_runtime_wrapper(self._fault_hooks_dir)
        self.log(f"[stack] FAULT INJECTION ON (test only): faults are read from {self.faults_dir}")

    @property
    def _fault_hooks_dir(self) -> Path:
        return self.state_dir / "runtime" / "fault-injection"

    def _fault_variables(self, spec: FunctionSpec) -> tuple[list[Path], dict[str, str]]:
        """The extra PYTHONPATH entry and variables of a runtime with fault injection."""
        if self.faults_dir is None:
            return [], {}
        return [self._fault_hooks_dir], faults.runtime_variables(self.faults_dir, spec.logical_id)

    # -- functions, delivery, API

    def _start_functions(self, model: StackModel) -> None:
        bootstrap = write_bootstrap(self.state_dir / "runtime")
        endpoints = self.endpoints()
        for spec in model.functions:
            self._check_runtime(spec)
            hook_paths, fault_variables = self._fault_variables(spec)
            config = RuntimeConfig(
                label=spec.label,
                function_name=spec.name,
                handler=spec.handler,
                code_dir=spec.code_uri,
                memory_size=spec.memory_size,
                timeout=spec.timeout,
                environment=lambda_environment(
                    function_name=spec.name,
                    handler=spec.handler,
                    code_dir=spec.code_uri,
                    layer_dirs=[*spec.layers, *hook_paths],
                    memory_size=spec.memory_size,
                    timeout=spec.timeout,
                    region=model.region,
                    template_variables=spec.environment,
                    endpoints=endpoints,
                    local_variables=fault_variables,
                ),
                concurrency=self._runtimes[spec.logical_id],
                provisioned=self._provisioned,
            )
            self.functions[spec.logical_id] = LambdaFunction(config, bootstrap, self.log)
        functions = list(self.functions.values())
        self._stops.append(("runtimes", lambda: _stop_all(functions)))
        start_functions(functions)
        for spec in model.functions:
            where = os.path.relpath(spec.code_uri, model.root)
            self.log(
                f"[stack] function {spec.name}: {spec.handler} in {where} "
                f"({spec.memory_size} MB, {spec.timeout} s, "
                f"{self._runtimes[spec.logical_id]} runtime(s), "
                f"{len(spec.rules)} rule(s), {len(spec.routes)} route(s))"
            )

    def _check_runtime(self, spec: FunctionSpec) -> None:
        ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
        if spec.runtime != ours:
            self.log(
                f"[stack] warning: {spec.logical_id} is {spec.runtime}; it runs on {ours} here"
            )

    def invoke(self, function_id: str, event: Any) -> InvocationResult:
        """Invoke a function of the template (by logical id) synchronously."""
        return self.functions[function_id].invoke(event)

    def _start_delivery(self, model: StackModel) -> None:
        for spec in model.functions:
            for rule in spec.rules:
                target = DeliveryTarget(
                    label=spec.label,
                    function_name=spec.name,
                    source=rule.rule_name,
                    queue_url=self.delivery_queues[(spec.logical_id, rule.event_id)],
                    timeout_seconds=spec.timeout,
                    max_retry_attempts=spec.max_retry_attempts,
                    on_failure_url=_queue_url(model, spec.on_failure_arn),
                    rule_retry_attempts=rule.retry_attempts
                    if rule.retry_attempts is not None
                    else DEFAULT_RULE_RETRY_ATTEMPTS,
                    rule_dead_letter_url=_queue_url(model, rule.dead_letter_arn),
                )
                function = self.functions[spec.logical_id]
                poller = QueuePoller(
                    target,
                    self.client("sqs"),
                    self._keeping_events(f"{spec.logical_id}.{rule.event_id}", function.invoke),
                    retry_delays=self._retry_delays,
                    parallelism=function.config.concurrency,
                    log=self.log,
                )
                self.pollers.append(poller)
        pollers = list(self.pollers)
        self._stops.append(("event delivery", lambda: stop_pollers(pollers)))
        start_pollers(pollers)

    @property
    def events_dir(self) -> Path:
        """``sam local invoke -e``-ready events: each rule's last (``<Function>.<Event>.json``)."""
        return self.state_dir / "events"

    def _keeping_events(
        self, name: str, invoke: Callable[[Any], InvocationResult]
    ) -> Callable[[Any], InvocationResult]:
        """``invoke``, keeping each event it is given in ``events_dir`` (the last one wins), so
        that ``sam local invoke`` can replay a real upload's or training job's event as is."""
        path = self.events_dir / f"{name}.json"

        def keep_and_invoke(event: Any) -> InvocationResult:
            self.events_dir.mkdir(parents=True, exist_ok=True)
            # Whole or not at all: runtimes of one function deliver side by side.
            partial = path.with_name(f".{path.name}.{threading.get_ident()}")
            partial.write_text(json.dumps(event, indent=2) + "\n")
            partial.replace(path)
            return invoke(event)

        return keep_and_invoke

    def _start_api(self, model: StackModel) -> None:
        apis = {route.api_id for route in model.routes}
        if not apis:
            return
        unsupported = [r.route_key for r in model.routes if r.payload_format_version != "2.0"]
        if unsupported:
            raise RuntimeError(f"the local HTTP API speaks payload format 2.0 only: {unsupported}")
        if len(apis) > 1:
            raise RuntimeError(
                f"the local stack serves one HTTP API; the template has {sorted(apis)}"
            )
        (api_logical_id,) = apis
        spec = next(api for api in model.apis if api.logical_id == api_logical_id)
        self.api_auth = spec.auth
        if spec.auth.mode == "JWT":
            self.issuer = LocalIssuer(spec.auth.jwt_issuer)
        api = LocalHttpApi(
            model.routes,
            self.invoke,
            api_id=spec.api_id,
            account_id=model.account_id,
            host=self.host,
            port=self._ports["api"],
            authorizer=authorizer_for(spec.auth, region=model.region, issuer=self.issuer),
            log=self.log,
        )
        api.start()
        self._stops.append(("HTTP API", api.stop))
        self.api_url = api.url
        for route in model.routes:
            self.log(f"[stack] route {route.route_key} -> {model.function(route.function_id).name}")
        self.log(f"[stack] HTTP API authorisation: {spec.auth.mode}")

    def api_client(self, *, timeout: float = 60.0) -> ApiClient:
        """A client of the local HTTP API that authorises as its ``ApiAuth`` mode requires:
        signed with the local keys (IAM), a token of the local issuer (JWT), or nothing."""
        return ApiClient(self.api_url, self.api_authorisation(), timeout)

    def api_authorisation(self) -> Auth:
        """What a caller of the local HTTP API sends to be let in (see :meth:`api_client`)."""
        if self.api_auth.mode == "IAM":
            assert self.model is not None
            return SigV4(self.model.region, LOCAL_CREDENTIALS)
        if self.api_auth.mode == "JWT":
            return Bearer(self.mint_token())
        return NoAuth()

    def mint_token(self, audience: str | None = None, **options: Any) -> str:
        """A token of the local JWT issuer (``ApiAuth=JWT`` only); see ``LocalIssuer.mint``."""
        if self.issuer is None:
            raise RuntimeError("the local HTTP API is not deployed with ApiAuth=JWT")
        return self.issuer.mint(audience or self.api_auth.jwt_audiences[0], **options)

    def _write_outputs(self, model: StackModel) -> None:
        self.outputs = {
            **model.local_outputs(self.api_url),
            "AwsEndpointUrl": self.aws_endpoint_url,
            "SageMakerEndpointUrl": self.sagemaker_url,
            "Region": model.region,
            "StackName": self.stack_name,
            # Where each rule delivers its events: sending a dead-lettered event's body back to
            # its rule's queue re-drives it (an asynchronous invocation, retries included).
            "DeliveryQueueUrls": {
                f"{function_id}.{event_id}": url
                for (function_id, event_id), url in sorted(self.delivery_queues.items())
            },
        }
        if self.faults_dir is not None:
            self.outputs["FaultInjectionDir"] = str(self.faults_dir)
        if self._join is not None:
            self.outputs["JoinedStack"] = self._join.stack_name  # its moto and SageMaker
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.api_auth.mode == "IAM":
            # The only keys the local API accepts (and the local AWS endpoint uses).
            self.outputs["ApiAccessKeyId"] = LOCAL_CREDENTIALS.access_key
            self.outputs["ApiSecretAccessKey"] = LOCAL_CREDENTIALS.secret_key
        if self.issuer is not None:
            self.outputs["JwksFile"] = str(
                self._write_private("jwks.json", json.dumps(self.issuer.jwks(), indent=2).encode())
            )
            self.outputs["JwtPrivateKeyFile"] = str(
                self._write_private("jwt-issuer-key.pem", self.issuer.private_key_pem())
            )
            self.outputs["JwtAudience"] = ",".join(self.api_auth.jwt_audiences)
        self.outputs_path.write_text(json.dumps(self.outputs, indent=2) + "\n")
        self._write_sam_env(model)

    def _write_sam_env(self, model: StackModel) -> None:
        """`sam local invoke --env-vars .local/sam-env.json`: each function's variables with this
        stack's names and endpoints. SAM overrides only variables the template declares; the
        endpoint variables are declared (absent on AWS) under the UseLocalStack condition.

        Only for a stack that containers can reach: on loopback, host.docker.internal would lead
        a container to itself (invokes hang, then fail), so there is no file and a note says
        which ``--host`` to use instead."""
        if ipaddress.ip_address(self.host).is_loopback:
            self.sam_env_path.unlink(missing_ok=True)
            self.log(f"[stack] {self.sam_local_note()}")
            return
        endpoints = self.container_endpoints()
        sam_env = {f.logical_id: {**f.environment, **endpoints} for f in model.functions}
        self.sam_env_path.write_text(json.dumps(sam_env, indent=2) + "\n")

    def _write_private(self, name: str, content: bytes) -> Path:
        """A file only this user can read, in the state folder."""
        path = self.state_dir / name
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        return path

    def sam_local_note(self) -> str:
        """Why there is no sam-env.json on loopback, and which ``--host`` gives one."""
        gateway = docker_gateway()
        where = f"--host {gateway} (docker0 here)" if gateway else "--host <the docker0 address>"
        return (
            f"no {self.sam_env_path.name} for sam local: its containers cannot reach "
            f"{self.host}; start the stack with {where} (docs/local-stack.md)"
        )

    @property
    def sam_env_path(self) -> Path:
        return self.state_dir / "sam-env.json"

    def endpoints(self) -> dict[str, str]:
        """The ``AWS_ENDPOINT_URL*`` variables that point a function's boto3 at this stack."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.sagemaker_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_url,
        }

    def container_endpoints(self) -> dict[str, str]:
        """This stack's endpoints as a sam local container reaches them (--add-host ...)."""
        here, there = f"//{self.host}:", "//host.docker.internal:"
        return {name: url.replace(here, there) for name, url in self.endpoints().items()}


def runtime_counts(model: StackModel, default: int, chosen: Mapping[str, int]) -> dict[str, int]:
    """Runtime processes per function (by logical id): ``chosen`` by logical id or log label,
    else ``default``. Each function's rules also deliver that many events at a time."""
    known = {name for f in model.functions for name in (f.logical_id, f.label)}
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise ValueError(
            f"concurrency for unknown function(s) {', '.join(unknown)}; "
            f"the template's are {', '.join(sorted(known))}"
        )
    counts = {
        f.logical_id: chosen.get(f.logical_id, chosen.get(f.label, default))
        for f in model.functions
    }
    if min(counts.values(), default=default) < 1:
        raise ValueError(f"concurrency must be at least 1, got {counts}")
    return counts


def _check_host(host: str) -> str:
    """Loopback by default; another address only if it is this machine's (never all of them)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--host {host!r}: give an IP address, e.g. 127.0.0.1") from None
    if address.is_unspecified:
        raise ValueError(f"--host {host}: refusing to listen on every interface")
    if not address.is_loopback:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, 0))
            except OSError:
                raise ValueError(f"--host {host}: not an address of this machine") from None
    return host


def _check_port_free(host: str, port: int) -> None:
    """Raise OSError if ``port`` is taken: moto's server thread exits and start() never returns."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds it
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(error.errno, f"{host}:{port} is in use ({error.strerror})") from None


def _queue_url(model: StackModel, arn: str | None) -> str | None:
    return model.queue_url_for_arn(arn) if arn else None


def _stop_all(functions: Sequence[LambdaFunction]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, len(functions))) as pool:
        for future in [pool.submit(function.stop) for function in functions]:
            future.result()
