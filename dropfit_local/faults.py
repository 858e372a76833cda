"""Test-only fault injection for the local stack: off unless it starts with ``--fault-injection``.

A fault is a small JSON file in the stack's faults folder (``<state-dir>/faults/``, also in
``outputs.json`` as ``FaultInjectionDir``), written by :func:`inject` from any process. Each one
fires a given number of times, then stays as a record of how often it fired. Two kinds:

``function:<LogicalId>`` (e.g. ``function:FormatFunction``)
    The next N invocations of that function whose event contains ``match`` (any text of the
    event's JSON, e.g. an object key) fail inside the runtime, before the handler runs, with
    ``InjectedFault`` as the error type. The handlers are not touched: with fault injection on,
    the runtime's entry point is :func:`lambda_handler` below, which imports the function's own
    handler (``_HANDLER``) and calls it unless a fault claims the invocation. Lambda's
    asynchronous retries, the dead-letter queue and a re-drive then behave as for any crash.

``endpoint:<EndpointName>`` (e.g. ``endpoint:dropfit-c36fc10b-iris``)
    The next N deployments (CreateEndpoint or UpdateEndpoint) of that endpoint in the local
    SageMaker fail as a model container that cannot load its artifact fails: the production
    variant does not pass its ping health check. A failed update rolls back, so the endpoint
    keeps serving its previous config; a failed creation leaves it ``Failed``. Injected with
    ``hold_seconds``, the deployment does not fail: it stays ``Creating`` or ``Updating`` that
    much longer, then goes on as usual (to act while an endpoint is changing).

This module uses the standard library only: the stack copies it next to the runtimes (as a
layer would), so the runtime processes import it without the repository on their path.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the stack sets in each runtime's environment when fault injection is on.
FAULTS_DIR_VARIABLE = "DROPFIT_LOCAL_FAULTS_DIR"
FUNCTION_ID_VARIABLE = "DROPFIT_LOCAL_FUNCTION_ID"
HANDLER_VARIABLE = "DROPFIT_LOCAL_HANDLER"  # the bootstrap runs this handler instead of _HANDLER
RUNTIME_MODULE = "dropfit_local_faults"  # this module's name inside the runtimes
RUNTIME_HANDLER = f"{RUNTIME_MODULE}.lambda_handler"

_LOCK_FILE = ".lock"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class InjectedFault(RuntimeError):
    """Raised in place of the handler by an injected ``function:`` fault (test only)."""


@dataclass(frozen=True)
class Fault:
    """One firing of an injected fault."""

    target: str
    message: str
    firing: int  # 1 for the first time it fired
    times: int  # how many times it fires in all
    hold_seconds: float = 0.0  # endpoint: a deployment held this long instead of failed


def _path(directory: Path, target: str) -> Path:
    kind, _, name = target.partition(":")
    if kind not in ("function", "endpoint") or not name:
        raise ValueError(f"fault target {target!r}: expected function:<id> or endpoint:<name>")
    return directory / f"{kind}-{_SAFE.sub('_', name)}.json"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise claims across the stack's processes (several runtimes may run one function)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def inject(
    directory: Path | str,
    target: str,
    times: int,
    *,
    match: str = "",
    message: str = "",
    hold_seconds: float = 0.0,
) -> None:
    """Make ``target`` fail its next ``times`` invocations or deployments, or hold its next
    ``times`` deployments ``hold_seconds`` longer (see module docs)."""
    if times < 1:
        raise ValueError("times must be at least 1")
    if hold_seconds < 0 or (hold_seconds and not target.startswith("endpoint:")):
        raise ValueError("hold_seconds: a positive delay, for an endpoint: target only")
    directory = Path(directory)
    spec = {
        "target": target,
        "times": times,
        "fired": 0,
        "match": match,
        "message": message,
        "hold_seconds": hold_seconds,
    }
    with _locked(directory):
        _path(directory, target).write_text(json.dumps(spec))


def fired(directory: Path | str, target: str) -> int:
    """How many times the fault last injected on ``target`` has fired (0 if none)."""
    directory = Path(directory)
    # Under the lock: a claim rewrites the file, and a read between its truncation and its write
    # would see it empty.
    with _locked(directory):
        try:
            spec = json.loads(_path(directory, target).read_text())
        except FileNotFoundError:
            return 0
    return int(spec["fired"])


def clear(directory: Path | str, target: str | None = None) -> None:
    """Remove the fault on ``target``, or every fault when ``target`` is None."""
    directory = Path(directory)
    with _locked(directory):
        paths = [_path(directory, target)] if target else list(directory.glob("*-*.json"))
        for path in paths:
            path.unlink(missing_ok=True)


def claim(directory: Path | str, target: str, subject: str = "") -> Fault | None:
    """The fault that this invocation or deployment must suffer, if one is still armed."""
    directory = Path(directory)
    path = _path(directory, target)
    if not path.exists():  # the common case costs one stat, no lock
        return None
    with _locked(directory):
        try:
            spec = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        if spec["fired"] >= spec["times"] or spec["match"] not in subject:
            return None
        spec["fired"] += 1
        path.write_text(json.dumps(spec))
    firing, times = int(spec["fired"]), int(spec["times"])
    text = spec["message"] or f"Injected fault {firing} of {times} on {target} (test only)"
    return Fault(target, text, firing, times, float(spec.get("hold_seconds") or 0.0))


# ---------------------------------------------------------------- inside a Lambda runtime


def install_runtime_wrapper(directory: Path) -> None:
    """Copy this module into ``directory``, which goes on the runtimes' PYTHONPATH (a layer)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(__file__, directory / f"{RUNTIME_MODULE}.py")


def runtime_variables(faults_dir: Path, function_id: str) -> dict[str, str]:
    """The variables that make a runtime start :func:`lambda_handler` around its handler."""
    return {
        FAULTS_DIR_VARIABLE: str(faults_dir),
        FUNCTION_ID_VARIABLE: function_id,
        HANDLER_VARIABLE: RUNTIME_HANDLER,
    }


def _load_handler(name: str) -> Callable[[Any, Any], Any]:
    module, _, function = name.rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(
        importlib.import_module(module.replace("/", ".")), function
    )
    return handler


# Imported during the runtime's init, as Lambda imports the handler's module; only when this
# module runs as the runtime's entry point (the stack imports it for inject/claim alone).
_handler = _load_handler(os.environ["_HANDLER"]) if __name__ == RUNTIME_MODULE else None


def lambda_handler(event: Any, context: Any) -> Any:
    """The function's own handler, unless an injected fault claims this invocation."""
    assert _handler is not None, f"{RUNTIME_HANDLER} runs only inside a local runtime"
    target = f"function:{os.environ[FUNCTION_ID_VARIABLE]}"
    fault = claim(os.environ[FAULTS_DIR_VARIABLE], target, json.dumps(event, ensure_ascii=False))
    if fault is not None:
        print(f"[fault-injection] {fault.message}", flush=True)
        raise InjectedFault(fault.message)
    return _handler(event, context)
