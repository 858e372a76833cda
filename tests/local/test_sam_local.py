"""Every ``sam local`` command of README.md and docs/local-stack.md, run as written against a
local stack on the docker0 address, after ``make build-local``.

Needs Docker and the Lambda python3.13 image of this machine's architecture (on a development
machine without them: ``../shared/tools/sam-local-standin.sh``); skipped, saying which is
missing, otherwise. Paths under ``.local/`` become the test stack's state folder, and
``start-api``'s port a free one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dropfit_cli.main import cli
from dropfit_local.lambda_runtime import ARCHITECTURE, free_port
from dropfit_local.sam_local import docker_gateway
from tests.e2e.stack import DATA, Local, run_stack

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "local-stack.md")
IMAGE = f"public.ecr.aws/lambda/python:3.13-{ARCHITECTURE}"
BIN = Path(sys.executable).parent  # sam and dropfit, as make install puts them
INVOKE_SECONDS = 600  # a container's first start on a busy machine


def _missing() -> str | None:
    """Why sam local cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker command (../shared/tools/sam-local-standin.sh installs Docker)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        return "Docker is not running (../shared/tools/sam-local-standin.sh starts a dockerd)"
    inspect = ["docker", "image", "inspect", IMAGE]
    if subprocess.run(inspect, capture_output=True, check=False).returncode:
        return (
            f"no Lambda image {IMAGE}: sam local would pull it "
            "(offline: ../shared/tools/sam-local-standin.sh builds a stand-in)"
        )
    if docker_gateway() is None:
        return "no docker0 bridge address for the local stack to listen on"
    return None


MISSING = _missing()
# The commands run only where sam local can; which ones the docs show is checked everywhere.
needs_sam_local = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def documented() -> list[str]:
    """The ``sam local`` commands of the docs' shell blocks, continuation lines joined."""
    commands = []
    for document in DOCUMENTS:
        for block in re.findall(r"```bash\n(.*?)```", document.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                if line.strip().startswith("sam local "):
                    commands.append(" ".join(line.split("#")[0].split()))
    return commands


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """``make build-local``, then a stack on docker0 that has trained iris (as the docs do)."""
    built = subprocess.run(
        ["make", "build-local"], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    state = tmp_path_factory.mktemp("sam-local-stack")
    with run_stack(state, "--host", str(docker_gateway())) as local:
        trained = CliRunner(env={"DROPFIT_STATE_DIR": str(state)}).invoke(
            cli, ["train", str(DATA / "iris.csv")]
        )
        assert trained.exit_code == 0, trained.output
        yield local


def command(text: str, local: Local) -> list[str]:
    """A documented command, with this test's state folder for ``.local/``."""
    words = shlex.split(text.replace(".local/", f"{local.state_dir}/"))
    return [str(BIN / "sam"), *words[1:]]


def sam_environment() -> dict[str, str]:
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{BIN}:{os.environ['PATH']}"}


def invoke(text: str, local: Local) -> Any:
    done = subprocess.run(
        command(text, local),
        cwd=ROOT,
        env=sam_environment(),
        capture_output=True,
        text=True,
        timeout=INVOKE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_docs_show_each_sam_local_command_tested_here() -> None:
    kinds = [" ".join(text.split()[:4]) for text in documented()]
    assert sorted(kinds) == sorted(
        [
            "sam local invoke PredictFunction",
            "sam local invoke FormatFunction",
            "sam local invoke DeployFunction",
            "sam local start-api --port",
        ]
    ), documented()


def the(kind: str) -> str:
    return next(text for text in documented() if text.startswith(kind))


@pytest.mark.slow
@needs_sam_local
def test_predict_in_its_container_lists_the_stacks_models(stack: Local) -> None:
    answer = invoke(the("sam local invoke PredictFunction"), stack)
    assert answer["statusCode"] == 200
    assert "iris" in [m["model"] for m in json.loads(answer["body"])["models"]]


@pytest.mark.slow
@needs_sam_local
def test_format_replays_the_last_upload_as_a_duplicate(stack: Local) -> None:
    answer = invoke(the("sam local invoke FormatFunction"), stack)
    assert answer["outcome"] == "duplicate" and answer["model"] == "iris"


@pytest.mark.slow
@needs_sam_local
def test_deploy_replays_the_training_jobs_state_change_as_a_duplicate(stack: Local) -> None:
    assert invoke(the("sam local invoke DeployFunction"), stack)["outcome"] == "duplicate"


@pytest.mark.slow
@needs_sam_local
def test_start_api_serves_the_routes_from_warm_containers(stack: Local) -> None:
    port = free_port()
    words = command(the("sam local start-api"), stack)
    words[words.index("--port") + 1] = str(port)
    server = subprocess.Popen(
        words, cwd=ROOT, env=sam_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + INVOKE_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=60) as got:
                    answer = json.loads(got.read())
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "start-api is down"
                time.sleep(1)
        assert "iris" in [m["model"] for m in answer["models"]]
    finally:
        server.terminate()
        server.communicate(timeout=60)
