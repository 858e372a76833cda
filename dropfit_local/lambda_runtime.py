"""Warm Lambda runtimes without Docker: the Runtime Interface Emulator around ``awslambdaric``.

Each function runs in its own process tree, started like the Lambda Python base image starts it:
``aws-lambda-rie`` (shipped in the aws-sam-cli package) executes a ``bootstrap`` that execs
``python -m awslambdaric <handler>`` with the venv's interpreter, in the function's ``CodeUri``
folder, with only the function's environment (template variables + what Lambda sets).

The emulator serves one invocation at a time, so each function has a small pool of runtime
processes (``concurrency``, default 1); an invocation waits for an idle one. Like an on-demand
Lambda environment, the Python runtime itself starts on the first invocation (the "Init
Duration" of a cold start) and then stays warm; with ``provisioned=True`` its INIT phase runs
when the emulator starts instead, as with provisioned concurrency (``dropfit_local.provisioned``).
After a timeout or a crash the emulator restarts it, on demand, on the next invocation.

Errors are reported as Lambda reports them: the emulator answers ``200`` with an
``{"errorMessage", "errorType", "stackTrace"}`` body for an exception, a plain
``Task timed out after N seconds`` for a timeout and ``502`` with a JSON error for a runtime
crash; it sets no ``X-Amz-Function-Error`` header, so :class:`InvocationResult` derives
``function_error`` (``"Unhandled"``, as Lambda's header says) from the answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import samcli

from dropfit_local import provisioned

ARCHITECTURE = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"
# The emulator of this machine's architecture: functions run on the host's CPU whatever their
# template Architectures say (the code is Python; native wheels come from the venv).
RIE_BINARY = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{ARCHITECTURE}"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
PROVISIONED_SCRIPT = Path(provisioned.__file__)
LOG_TAIL_BYTES = 4096  # what Lambda returns as LogResult with LogType=Tail
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload quota
_ERROR_KEYS = frozenset({"errorMessage", "errorType"})
_ERROR_SHAPE = frozenset({"errorMessage", "errorType", "stackTrace", "cause", "requestId"})
_TIMED_OUT = re.compile(r"Task timed out after [\d.]+ seconds")
_REPORT = re.compile(
    r"^REPORT RequestId: \S+\s+(?:Init Duration: [\d.]+ ms\s+)?Duration: ([\d.]+) ms"
)


@dataclass(frozen=True)
class InvocationResult:
    """One invocation's answer, as Lambda's Invoke API would give it."""

    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed (X-Amz-Function-Error)
    duration_ms: float
    log_tail: str

    def json(self) -> Any:
        """The payload decoded as JSON (every payload from a Python runtime is JSON)."""
        return json.loads(self.payload or b"null")

    @property
    def error_type(self) -> str | None:
        """``errorType`` of a failed invocation (``Sandbox.Timedout`` for a timeout)."""
        if self.function_error is None:
            return None
        with contextlib.suppress(ValueError, AttributeError):
            return str(self.json().get("errorType"))
        return "Unknown"

    @property
    def error_message(self) -> str | None:
        if self.function_error is None:
            return None
        with contextlib.suppress(ValueError, AttributeError):
            return str(self.json().get("errorMessage"))
        return self.payload.decode("utf-8", "replace")


class InvocationError(RuntimeError):
    """The runtime could not be reached or gave no answer (not an error of the function)."""


class PayloadTooLarge(InvocationError):
    """The event is over Lambda's payload quota: Lambda refuses it without running the function."""


@dataclass(frozen=True)
class RuntimeConfig:
    """What one function's runtime needs: code, handler, limits and its whole environment."""

    label: str  # log prefix, e.g. "format"
    function_name: str
    handler: str
    code_dir: Path
    memory_size: int
    timeout: int
    environment: Mapping[str, str]
    concurrency: int = 1
    # INIT when the runtime starts, not at its first invocation (dropfit_local.provisioned).
    provisioned: bool = False


def python_path(code_dir: Path, layer_dirs: Iterable[Path]) -> str:
    """Code first, then each layer (``python/`` inside it when built that way), then the venv."""
    entries: list[Path] = [code_dir]
    for layer in layer_dirs:
        entries.append(layer / "python" if (layer / "python").is_dir() else layer)
    paths = sysconfig.get_paths()
    entries.extend(Path(paths[key]) for key in ("purelib", "platlib"))
    return os.pathsep.join(dict.fromkeys(str(entry) for entry in entries))


def lambda_environment(
    *,
    function_name: str,
    handler: str,
    code_dir: Path,
    layer_dirs: Sequence[Path],
    memory_size: int,
    timeout: int,
    region: str,
    template_variables: Mapping[str, str],
    endpoints: Mapping[str, str],
    local_variables: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment Lambda gives a Python function, pointed at the local endpoints.

    ``endpoints`` are ``AWS_ENDPOINT_URL*`` variables; ``local_variables`` are the local stack's
    own (fault injection's, when it is on). Template variables come last but cannot override the
    reserved ones, as in Lambda.
    """
    reserved = {
        "_HANDLER": handler,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
        "PYTHONPATH": python_path(code_dir, layer_dirs),
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    local = {"POWERTOOLS_TRACE_DISABLED": "true", **endpoints, **(local_variables or {})}
    user = {k: v for k, v in template_variables.items() if k not in reserved}
    return {**local, **user, **reserved}


def free_port() -> int:
    """An unused loopback port (the OS picks it; the caller binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_bootstrap(directory: Path) -> Path:
    """The ``bootstrap`` the emulator runs: exec the venv's Python on ``awslambdaric``, or hand
    over to the runtime initialised in advance when there is one (``dropfit_local.provisioned``).

    The handler is ``_HANDLER``, unless ``DROPFIT_LOCAL_HANDLER`` names another entry point
    (fault injection's wrapper, which calls ``_HANDLER`` in turn; see ``dropfit_local.faults``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    bootstrap = directory / "bootstrap"
    handler = "${DROPFIT_LOCAL_HANDLER:-$_HANDLER}"
    bootstrap.write_text(
        "#!/bin/sh\n"
        f'[ -n "${provisioned.SOCKET_VARIABLE}" ] && '
        f'exec "{sys.executable}" -P "{PROVISIONED_SCRIPT}" attach\n'
        f'exec "{sys.executable}" -m awslambdaric "{handler}"\n'
    )
    bootstrap.chmod(bootstrap.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bootstrap


@dataclass
class _Capture:
    lines: list[str] = field(default_factory=list)
    reported: threading.Event = field(default_factory=threading.Event)
    duration_ms: float | None = None


class _Worker:
    """One emulator process (and the runtime it starts), with its output prefixed and captured."""

    def __init__(
        self, config: RuntimeConfig, index: int, bootstrap: Path, log: Callable[[str], None]
    ) -> None:
        self.config = config
        self.prefix = config.label if config.concurrency == 1 else f"{config.label}#{index}"
        self.bootstrap = bootstrap
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._initialised: subprocess.Popen[bytes] | None = None  # provisioned: INIT done early
        self._socket_dir: Path | None = None
        self._init_done: int | None = None  # read end of the "INIT done" pipe (provisioned)
        self._output: Any = None
        self._reader: threading.Thread | None = None
        self._capture: _Capture | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.port, api_port = free_port(), free_port()
        environment = dict(self.config.environment)
        listener = self._provisioned_listener(environment) if self.config.provisioned else None
        # The emulator and the runtime write to one pipe, as the runtime inherits the emulator's.
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    str(RIE_BINARY),
                    "--log-level",
                    "warn",
                    "--runtime-interface-emulator-address",
                    f"127.0.0.1:{self.port}",
                    "--runtime-api-address",
                    f"127.0.0.1:{api_port}",
                    str(self.bootstrap),
                ],
                cwd=self.config.code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,  # its own process group: stop() kills the runtime with it
            )
            if listener is not None:
                self._init_done, init_done = os.pipe()
                self._initialised = subprocess.Popen(
                    [sys.executable, "-P", str(PROVISIONED_SCRIPT), "serve"],
                    cwd=self.config.code_dir,
                    env={
                        **environment,
                        provisioned.LISTENER_FD_VARIABLE: str(listener.fileno()),
                        provisioned.READY_FD_VARIABLE: str(init_done),
                    },
                    pass_fds=(listener.fileno(), init_done),
                    stdin=subprocess.DEVNULL,
                    stdout=write_end,
                    stderr=write_end,
                    start_new_session=True,  # a group of its own, killed with the emulator's
                )
                os.close(init_done)
        finally:
            os.close(write_end)
            if listener is not None:
                listener.close()
        self._output = os.fdopen(read_end, "rb")
        self._reader = threading.Thread(
            target=self._read, name=f"lambda-{self.prefix}-output", daemon=True
        )
        self._reader.start()

    def _provisioned_listener(self, environment: dict[str, str]) -> socket.socket:
        """The socket the early-initialised runtime waits on; its path goes to the bootstrap."""
        # A folder of its own under /tmp: a Unix socket's path is limited to ~107 bytes.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="dropfit-runtime-"))
        path = self._socket_dir / "init.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        environment[provisioned.SOCKET_VARIABLE] = str(path)
        environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = "provisioned-concurrency"
        return listener

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise InvocationError(f"[{self.prefix}] the emulator exited during startup")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                self._wait_initialised(deadline)
                return
            time.sleep(0.05)
        raise InvocationError(f"[{self.prefix}] the emulator did not listen in time")

    def _wait_initialised(self, deadline: float) -> None:
        """Provisioned: wait for the runtime's INIT (if it fails or lasts, the first invocation
        waits for it, or starts a runtime on demand)."""
        if self._init_done is None:
            return
        readable, _, _ = select.select(
            [self._init_done], [], [], max(0, deadline - time.monotonic())
        )
        if not readable:
            self.log(f"[{self.prefix}] still initialising: the first invocation will wait for it")
            return
        if not os.read(self._init_done, 1):
            self.log(f"[{self.prefix}] the early INIT ended: the first invocation starts a runtime")
        os.close(self._init_done)
        self._init_done = None

    def _read(self) -> None:
        assert self._output is not None
        for raw in self._output:
            # awslambdaric joins a multi-line record (a traceback) with \r: show each line.
            for line in raw.decode("utf-8", "replace").rstrip("\r\n").split("\r"):
                self.log(f"[{self.prefix}] {line}")
                with self._lock:
                    capture = self._capture
                if capture is not None:
                    capture.lines.append(line)
                    if match := _REPORT.match(line):
                        capture.duration_ms = float(match[1])
                        capture.reported.set()

    def invoke(self, payload: bytes) -> InvocationResult:
        capture = _Capture()
        with self._lock:
            self._capture = capture
        started = time.monotonic()
        try:
            status, body = self._post(payload)
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
        # The emulator prints REPORT right after answering: give the reader a moment for it.
        capture.reported.wait(0.5)
        with self._lock:
            self._capture = None
        tail = "\n".join(capture.lines)[-LOG_TAIL_BYTES:]
        function_error, body = _classify(status, body, self.prefix)
        return InvocationResult(body, function_error, capture.duration_ms or elapsed_ms, tail)

    def _post(self, payload: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=payload, method="POST"
        )
        # The emulator enforces the function timeout; the margin covers a cold start's init.
        timeout = self.config.timeout + 30
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())
        except (OSError, urllib.error.URLError) as error:
            raise InvocationError(f"[{self.prefix}] runtime unreachable: {error}") from error

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_seconds: float = 2.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # The runtime may outlive the emulator for a moment: clear the whole group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._initialised is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._initialised.pid, signal.SIGKILL)
            self._initialised.wait()
            self._initialised = None
        if self._reader is not None:
            self._reader.join(2)
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._init_done is not None:
            os.close(self._init_done)
            self._init_done = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        self.process = None


def _classify(status: int, body: bytes, prefix: str) -> tuple[str | None, bytes]:
    """(function error, payload) from the emulator's answer; see the module docstring."""
    text = body.decode("utf-8", "replace")
    if status == 200 and _TIMED_OUT.fullmatch(text.strip()):
        error = {"errorType": "Sandbox.Timedout", "errorMessage": text.strip()}
        return "Unhandled", json.dumps(error).encode()
    try:
        document = json.loads(body)
    except ValueError:
        raise InvocationError(f"[{prefix}] unexpected answer {status}: {text[:200]}") from None
    is_error = (
        isinstance(document, dict)
        and document.keys() >= _ERROR_KEYS
        and document.keys() <= _ERROR_SHAPE
    )
    if status == 200:
        return ("Unhandled" if is_error else None), body
    if is_error:  # 502: the runtime crashed, the handler is missing, the answer is too large ...
        return "Unhandled", body
    raise InvocationError(f"[{prefix}] unexpected answer {status}: {text[:200]}")


class LambdaFunction:
    """A function's warm runtimes: ``invoke(event)`` as a synchronous (RequestResponse) call."""

    def __init__(self, config: RuntimeConfig, bootstrap: Path, log: Callable[[str], None] = print):
        if config.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config
        self._workers = [_Worker(config, i, bootstrap, log) for i in range(config.concurrency)]
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._log = log

    @property
    def name(self) -> str:
        return self.config.function_name

    @property
    def ports(self) -> list[int]:
        """The emulators' invocation ports (0 before start)."""
        return [worker.port for worker in self._workers]

    def start(self) -> None:
        """Spawn the emulator processes (returns at once; see :meth:`wait_ready`)."""
        for worker in self._workers:
            worker.start()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until every emulator listens, then accept invocations."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.wait_ready(deadline)
            self._idle.put(worker)

    def invoke(self, event: Any) -> InvocationResult:
        """Invoke with ``event`` (JSON-serialisable) on an idle runtime, waiting for one."""
        payload = json.dumps(event).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"[{self.config.label}] a {len(payload)}-byte event is over the "
                f"{MAX_PAYLOAD_BYTES}-byte quota"
            )
        worker = self._idle.get()
        try:
            if not worker.alive():
                self._log(f"[{worker.prefix}] emulator gone: restarting it")
                worker.stop()
                worker.start()
                worker.wait_ready(time.monotonic() + 15)
            return worker.invoke(payload)
        finally:
            self._idle.put(worker)

    def stop(self) -> None:
        """Kill every runtime process group of this function."""
        for worker in self._workers:
            worker.stop()


def start_functions(functions: Sequence[LambdaFunction], timeout: float = 15.0) -> None:
    """Start every function's runtimes at once and wait until all of them listen."""
    for function in functions:
        function.start()
    with ThreadPoolExecutor(max_workers=max(1, len(functions))) as pool:
        for future in [pool.submit(function.wait_ready, timeout) for function in functions]:
            future.result()
