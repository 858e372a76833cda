"""The running local stack, deployed from the template's defaults, is not open to anyone: every
route needs a SigV4 signature (ApiAuth=IAM) and neighbours are off (AllowNeighbors=false)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from dropfit_cli.api import ApiClient, Bearer, NoAuth, SigV4
from dropfit_local.authorizers import INVALID_TOKEN, SIGNATURE_MISMATCH

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture(scope="module")
def served(local: Local) -> Local:
    local.upload("auth-live.csv", IRIS)
    assert local.wait_for_new_run("auth-live")["status"] == "ready"
    return local


def test_the_stack_says_how_to_call_it(local: Local) -> None:
    assert local.outputs["ApiAuth"] == "IAM"
    assert (local.outputs["ApiAccessKeyId"], local.outputs["ApiSecretAccessKey"]) == (
        "testing",
        "testing",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models"), ("GET", "/models/auth-live"), ("POST", "/models/auth-live/predict")],
)
def test_unsigned_requests_are_refused_on_every_route(
    served: Local, method: str, path: str
) -> None:
    before = served.log_count("[api] POST /models/auth-live/predict -> 200")
    answer = ApiClient(served.api, NoAuth()).request(method, path, json=ROW)
    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})
    assert served.log_count("[api] POST /models/auth-live/predict -> 200") == before


def test_a_bearer_token_is_not_a_signature(served: Local) -> None:
    answer = ApiClient(served.api, Bearer("anything")).get("/models")
    assert answer.status == 403


def test_a_wrong_secret_is_refused(served: Local) -> None:
    region = str(served.outputs["Region"])
    client = ApiClient(served.api, SigV4(region, Credentials("testing", "guessed")))
    answer = client.post("/models/auth-live/predict", json=ROW)
    assert (answer.status, answer.json()) == (403, {"message": SIGNATURE_MISMATCH})


def test_an_unknown_key_is_refused(served: Local) -> None:
    region = str(served.outputs["Region"])
    client = ApiClient(served.api, SigV4(region, Credentials("AKIDSOMEONEELSE", "testing")))
    answer = client.get("/models")
    assert (answer.status, answer.json()) == (403, {"message": INVALID_TOKEN})


def test_signed_requests_are_served(served: Local) -> None:
    answer = served.client.post("/models/auth-live/predict", json=ROW)
    assert answer.status == 200, answer.text
    assert answer.json()["predictions"] == [{"label": "setosa"}]


def test_the_aws_cli_credentials_file_signs_for_the_api(
    served: Local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))

    signer = SigV4.from_environment(str(served.outputs["Region"]))

    assert signer.credentials.access_key == "testing"
    assert ApiClient(served.api, signer).get("/models/auth-live").status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_is_served(served: Local) -> None:
    done = subprocess.run(
        [
            "curl", "-sS", "--fail-with-body",
            "--aws-sigv4", f"aws:amz:{served.outputs['Region']}:execute-api",
            "--user", "testing:testing",
            "-H", "content-type: application/json", "-d", json.dumps(ROW),
            f"{served.api}/models/auth-live/predict",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if "aws-sigv4" in done.stderr and "unknown" in done.stderr.lower():
        pytest.skip(f"this curl has no --aws-sigv4: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["predictions"] == [{"label": "setosa"}]


def test_neighbours_are_off_by_default(served: Local) -> None:
    answer = served.client.post("/models/auth-live/predict", query={"neighbors": "true"}, json=ROW)
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "NeighborsDisabled"
    assert "predictions" not in answer.json()
