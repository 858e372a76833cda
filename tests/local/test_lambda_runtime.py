"""dropfit_local.lambda_runtime: throwaway handlers run in the Runtime Interface Emulator."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from dropfit_local.api_gateway import LocalHttpApi
from dropfit_local.lambda_runtime import (
    MAX_PAYLOAD_BYTES,
    LambdaFunction,
    PayloadTooLarge,
    RuntimeConfig,
    lambda_environment,
    start_functions,
    write_bootstrap,
)
from dropfit_local.template import HttpRoute

HANDLERS = """
import json, os, time

IMPORTED_AT = time.time()  # the INIT phase

def init(event, context):
    if event.get("crash"):
        os._exit(3)
    time.sleep(event.get("seconds", 0))
    return {
        "imported_at": IMPORTED_AT,
        "type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "pid": os.getpid(),
    }

def echo(event, context):
    print("echo got", json.dumps(event))
    return {
        "event": event,
        "name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("GREETING", "AWS_REGION", "AWS_ENDPOINT_URL",
                                                "AWS_LAMBDA_FUNCTION_TIMEOUT", "_HANDLER")},
        "shared": __import__("shared_lib").VALUE,
        "pid": os.getpid(),
    }

def fail(event, context):
    raise ValueError(f"cannot handle {event['n']}")

def slow(event, context):
    time.sleep(event.get("seconds", 10))
    return "done"

def crash(event, context):
    os._exit(3)

def http(event, context):
    return {"statusCode": 201, "cookies": ["a=1"], "body": event["rawPath"]}
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("lambda")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(textwrap.dedent(HANDLERS))
    (root / "layer").mkdir()
    (root / "layer" / "shared_lib.py").write_text("VALUE = 'from the layer'\n")
    return root / "src", root / "layer", write_bootstrap(root / "runtime")


Factory = Callable[..., LambdaFunction]


@pytest.fixture
def make(code: tuple[Path, Path, Path]) -> Iterator[Factory]:
    src, layer, bootstrap = code
    started: list[LambdaFunction] = []

    def factory(
        handler: str, timeout: int = 5, concurrency: int = 1, provisioned: bool = False
    ) -> LambdaFunction:
        environment = lambda_environment(
            function_name=f"test-{handler}",
            handler=f"app.{handler}",
            code_dir=src,
            layer_dirs=[layer],
            memory_size=256,
            timeout=timeout,
            region="eu-west-1",
            template_variables={"GREETING": "hello", "AWS_REGION": "ignored"},
            endpoints={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
        )
        config = RuntimeConfig(
            label=handler,
            function_name=f"test-{handler}",
            handler=f"app.{handler}",
            code_dir=src,
            memory_size=256,
            timeout=timeout,
            environment=environment,
            concurrency=concurrency,
            provisioned=provisioned,
        )
        function = LambdaFunction(config, bootstrap, log=lambda _: None)
        started.append(function)
        start_functions([function])
        return function

    yield factory
    for function in started:
        function.stop()


def test_handlers_run_with_the_function_environment(make: Factory) -> None:
    result = make("echo").invoke({"hello": "world"})
    assert result.function_error is None
    answer = result.json()
    assert answer["event"] == {"hello": "world"}
    assert (answer["name"], answer["memory"]) == ("test-echo", "256")
    assert 0 < answer["remaining_ms"] <= 5000
    assert answer["env"] == {
        "GREETING": "hello",
        "AWS_REGION": "eu-west-1",  # reserved variables cannot be overridden, as in Lambda
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "5",
        "_HANDLER": "app.echo",
    }
    assert answer["shared"] == "from the layer"
    assert 'echo got {"hello": "world"}' in result.log_tail
    assert "REPORT RequestId" in result.log_tail


def test_runtimes_stay_warm_between_invocations(make: Factory) -> None:
    function = make("echo")
    first, second = function.invoke({}), function.invoke({})
    assert first.json()["pid"] == second.json()["pid"]


def test_handler_errors_are_reported_like_lambda(make: Factory) -> None:
    result = make("fail").invoke({"n": 7})
    assert result.function_error == "Unhandled"
    assert (result.error_type, result.error_message) == ("ValueError", "cannot handle 7")
    assert any("raise ValueError" in line for line in result.json()["stackTrace"])
    assert "[ERROR] ValueError: cannot handle 7" in result.log_tail


def test_timeouts_are_errors_and_the_runtime_recovers(make: Factory) -> None:
    function = make("slow", timeout=1)
    started = time.monotonic()
    result = function.invoke({"seconds": 5})
    assert time.monotonic() - started < 4
    assert (result.function_error, result.error_type) == ("Unhandled", "Sandbox.Timedout")
    assert "Task timed out after 1.00 seconds" in str(result.error_message)
    assert function.invoke({"seconds": 0}).json() == "done"


def test_a_crashed_runtime_is_an_error_and_restarts(make: Factory) -> None:
    function = make("crash")
    result = function.invoke({})
    assert (result.function_error, result.error_type) == ("Unhandled", "Runtime.ExitError")
    assert function.invoke({}).error_type == "Runtime.ExitError"  # a fresh runtime ran again


def test_each_runtime_serves_one_invocation_at_a_time(make: Factory) -> None:
    def run_two(function: LambdaFunction) -> float:
        started = time.monotonic()
        threads = [
            threading.Thread(target=function.invoke, args=({"seconds": 1},)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    function = make("slow", concurrency=2)
    function.invoke({"seconds": 0})  # both runtimes' cold starts out of the way
    function.invoke({"seconds": 0})
    assert run_two(function) < 1.9  # two runtimes: in parallel
    assert run_two(make("slow", concurrency=1)) >= 2  # one runtime: one after the other


def test_events_over_the_payload_quota_are_refused_without_running_the_function(
    make: Factory,
) -> None:
    function = make("echo")
    with pytest.raises(PayloadTooLarge):
        function.invoke({"body": "x" * MAX_PAYLOAD_BYTES})
    assert function.invoke({}).function_error is None


@pytest.mark.parametrize(
    ("provisioned", "initialisation"),
    [(False, "on-demand"), (True, "provisioned-concurrency")],
)
def test_a_provisioned_runtime_runs_its_init_before_the_first_invocation(
    make: Factory, provisioned: bool, initialisation: str
) -> None:
    function = make("init", provisioned=provisioned)
    started = time.time()  # start_functions returned: a provisioned INIT is over
    answer = function.invoke({}).json()
    assert (answer["imported_at"] < started) is provisioned
    assert answer["type"] == initialisation
    assert function.invoke({}).json()["pid"] == answer["pid"]  # warm, as any runtime


def test_a_provisioned_runtime_that_crashes_or_times_out_comes_back_on_demand(
    make: Factory,
) -> None:
    function = make("init", timeout=1, provisioned=True)
    first = function.invoke({}).json()
    assert function.invoke({"crash": True}).error_type == "Runtime.ExitError"
    after_crash = function.invoke({}).json()
    assert after_crash["type"] == "on-demand" and after_crash["pid"] != first["pid"]
    assert not _running(first["pid"])
    assert function.invoke({"seconds": 3}).error_type == "Sandbox.Timedout"
    assert function.invoke({}).json()["type"] == "on-demand"


@pytest.mark.parametrize("provisioned", [False, True])
def test_stop_leaves_no_process(make: Factory, provisioned: bool) -> None:
    function = make("init", provisioned=provisioned)
    pid = function.invoke({}).json()["pid"]
    function.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_http_api_in_front_of_a_real_runtime(make: Factory) -> None:
    functions = {"Http": make("http"), "Fail": make("fail")}
    routes = [
        HttpRoute("Http", "Get", "Api", "GET", "/things/{id}", "2.0"),
        HttpRoute("Fail", "Post", "Api", "POST", "/things", "2.0"),
    ]
    api = LocalHttpApi(
        routes,
        lambda function_id, event: functions[function_id].invoke(event),
        api_id="abc",
        account_id="123456789012",
        port=0,
        log=lambda _: None,
    )
    api.start()
    try:
        response = requests.get(f"{api.url}/things/42", timeout=30)
        assert (response.status_code, response.text) == (201, "/things/42")
        assert response.headers["set-cookie"] == "a=1"
        failed = requests.post(f"{api.url}/things", json={"n": 1}, timeout=30)
        assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})
    finally:
        api.stop()
