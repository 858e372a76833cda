"""dropfit_local.faults: test-only faults that fire a set number of times, in any process."""

from __future__ import annotations

import json
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dropfit_local import faults
from dropfit_local.lambda_runtime import (
    LambdaFunction,
    RuntimeConfig,
    lambda_environment,
    start_functions,
    write_bootstrap,
)


def test_a_fault_fires_as_often_as_injected_then_stays_as_a_record(tmp_path: Path) -> None:
    faults.inject(tmp_path, "endpoint:dropfit-iris", 2)

    fired = [faults.claim(tmp_path, "endpoint:dropfit-iris") for _ in range(3)]

    assert [(f.firing, f.times) if f else None for f in fired] == [(1, 2), (2, 2), None]
    assert fired[0] is not None
    assert fired[0].message == "Injected fault 1 of 2 on endpoint:dropfit-iris (test only)"
    assert faults.fired(tmp_path, "endpoint:dropfit-iris") == 2
    assert faults.claim(tmp_path, "endpoint:dropfit-other") is None
    assert faults.fired(tmp_path, "endpoint:dropfit-other") == 0


def test_a_fault_fires_only_for_subjects_that_contain_its_match(tmp_path: Path) -> None:
    faults.inject(tmp_path, "function:FormatFunction", 1, match="incoming/ü.csv", message="boom")

    assert faults.claim(tmp_path, "function:FormatFunction", '{"key": "incoming/a.csv"}') is None
    fault = faults.claim(tmp_path, "function:FormatFunction", '{"key": "incoming/ü.csv"}')

    assert fault is not None and fault.message == "boom"


def test_concurrent_claims_fire_a_fault_exactly_as_often_as_injected(tmp_path: Path) -> None:
    faults.inject(tmp_path, "function:DeployFunction", 5)

    with ThreadPoolExecutor(8) as pool:
        claimed = list(
            pool.map(lambda _: faults.claim(tmp_path, "function:DeployFunction"), range(40))
        )

    assert sorted(f.firing for f in claimed if f is not None) == [1, 2, 3, 4, 5]


def test_fired_never_reads_a_fault_a_claim_is_rewriting(tmp_path: Path) -> None:
    target = "function:DeployFunction"
    faults.inject(tmp_path, target, 3)
    path = tmp_path / "function-DeployFunction.json"
    rewritten = {**json.loads(path.read_text()), "fired": 1}
    with ThreadPoolExecutor(1) as pool, faults._locked(tmp_path):
        path.write_text("")  # a claim holds the lock, between truncating and writing
        read = pool.submit(faults.fired, tmp_path, target)
        time.sleep(0.2)  # the reader is waiting for the lock (or, without it, has read "")
        path.write_text(json.dumps(rewritten))

    assert read.result(timeout=5) == 1


def test_clear_removes_one_fault_or_every_fault(tmp_path: Path) -> None:
    faults.inject(tmp_path, "function:A", 1)
    faults.inject(tmp_path, "endpoint:b", 1)

    faults.clear(tmp_path, "function:A")
    assert faults.claim(tmp_path, "function:A") is None
    faults.clear(tmp_path)

    assert faults.claim(tmp_path, "endpoint:b") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


@pytest.mark.parametrize("target", ["queue:x", "function:", "FormatFunction"])
def test_a_target_names_a_function_or_an_endpoint(tmp_path: Path, target: str) -> None:
    with pytest.raises(ValueError, match="expected function:<id> or endpoint:<name>"):
        faults.inject(tmp_path, target, 1)


def test_times_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        faults.inject(tmp_path, "function:A", 0)


HANDLER = """
import os

def echo(event, context):
    return {"event": event, "handler": os.environ["_HANDLER"]}
"""


def test_the_runtime_wrapper_fails_matching_invocations_and_otherwise_runs_the_handler(
    tmp_path: Path,
) -> None:
    code, hooks, faults_dir = tmp_path / "src", tmp_path / "hooks", tmp_path / "faults"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(HANDLER))
    faults.install_runtime_wrapper(hooks)
    environment = lambda_environment(
        function_name="test-echo",
        handler="app.echo",
        code_dir=code,
        layer_dirs=[hooks],
        memory_size=128,
        timeout=5,
        region="us-east-1",
        template_variables={},
        endpoints={},
        local_variables=faults.runtime_variables(faults_dir, "EchoFunction"),
    )
    config = RuntimeConfig("echo", "test-echo", "app.echo", code, 128, 5, environment)
    function = LambdaFunction(config, write_bootstrap(tmp_path / "runtime"), log=lambda _: None)
    start_functions([function])
    try:
        faults.inject(faults_dir, "function:EchoFunction", 1, match="crash me")

        untouched = function.invoke({"note": "leave me"})
        failed = function.invoke({"note": "crash me"})
        retried = function.invoke({"note": "crash me"})
    finally:
        function.stop()

    assert untouched.json() == {"event": {"note": "leave me"}, "handler": "app.echo"}
    assert failed.function_error == "Unhandled"
    assert (failed.error_type, failed.error_message) == (
        "InjectedFault",
        "Injected fault 1 of 1 on function:EchoFunction (test only)",
    )
    assert json.loads(retried.payload) == {"event": {"note": "crash me"}, "handler": "app.echo"}
    assert faults.fired(faults_dir, "function:EchoFunction") == 1


def test_only_an_endpoint_fault_may_hold_a_deployment(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="for an endpoint: target only"):
        faults.inject(tmp_path, "function:FormatFunction", 1, hold_seconds=1.0)
    faults.inject(tmp_path, "endpoint:dropfit-iris", 1, hold_seconds=1.5)
    fault = faults.claim(tmp_path, "endpoint:dropfit-iris")
    assert fault is not None and fault.hold_seconds == 1.5
