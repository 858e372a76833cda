"""The local stack, started from the real template, enforces the ``ApiAuth`` it is given:
a JWT of its own issuer (good, expired, another audience), and NONE open to all. (IAM, the
default, is proven live against the e2e stack: tests/e2e/test_auth_live.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dropfit_cli.api import ApiClient, Bearer, NoAuth
from dropfit_local.__main__ import _usage, main
from dropfit_local.stack import ROOT, LocalStack

pytestmark = pytest.mark.slow

AUDIENCE = "dropfit-local-client"
JWT = {"ApiAuth": "JWT", "JwtIssuer": "https://issuer.example/local", "JwtAudience": AUDIENCE}


def start(state: Path, parameters: dict[str, str]) -> LocalStack:
    return LocalStack(
        root=ROOT,
        aws_port=0,
        api_port=0,
        sagemaker_port=0,
        parameters=parameters,
        state_dir=state,
        log=lambda _: None,
    )


@pytest.fixture(scope="module")
def jwt_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with start(tmp_path_factory.mktemp("jwt"), JWT) as stack:
        yield stack


def test_jwt_stack_lets_in_a_token_of_its_issuer(jwt_stack: LocalStack) -> None:
    answer = ApiClient(jwt_stack.api_url, Bearer(jwt_stack.mint_token())).get("/models")
    assert (answer.status, answer.json()) == (200, {"models": []})
    assert jwt_stack.api_client().get("/models").status == 200


@pytest.mark.parametrize(
    ("token_options", "why"),
    [
        ({"expires_in": -5}, "the token has expired"),
        ({"audience": "another-client"}, "the token does not have a valid audience"),
        ({"issuer": "https://issuer.example/other"}, "the token does not have a valid issuer"),
    ],
    ids=["expired", "wrong audience", "wrong issuer"],
)
def test_jwt_stack_refuses_bad_tokens(
    jwt_stack: LocalStack, token_options: dict[str, object], why: str
) -> None:
    token = jwt_stack.mint_token(**token_options)  # type: ignore[arg-type]
    answer = ApiClient(jwt_stack.api_url, Bearer(token)).get("/models")
    assert (answer.status, answer.json()) == (401, {"message": "Unauthorized"})
    assert f'error_description="{why}"' in answer.headers["www-authenticate"]


def test_jwt_stack_refuses_requests_without_a_token(jwt_stack: LocalStack) -> None:
    answer = ApiClient(jwt_stack.api_url).post("/models/iris/predict", json={"instances": [[1]]})
    assert (answer.status, answer.json()) == (401, {"message": "Unauthorized"})


def test_jwt_stack_writes_what_users_need_to_mint_tokens(jwt_stack: LocalStack) -> None:
    outputs = jwt_stack.outputs
    assert (outputs["ApiAuth"], outputs["JwtIssuer"]) == ("JWT", JWT["JwtIssuer"])
    assert outputs["JwtAudience"] == AUDIENCE
    key_file = Path(outputs["JwtPrivateKeyFile"])
    assert key_file.stat().st_mode & 0o077 == 0  # only its owner can read the key
    assert "ApiSecretAccessKey" not in outputs


def test_the_token_command_mints_a_token_the_running_stack_accepts(
    jwt_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--state-dir", str(jwt_stack.state_dir)]) == 0
    token = capsys.readouterr().out.strip()
    assert ApiClient(jwt_stack.api_url, Bearer(token)).get("/models").status == 200
    assert "python -m dropfit_local token" in _usage(jwt_stack)


def test_none_stack_is_open_to_anyone(tmp_path: Path) -> None:
    with start(tmp_path, {"ApiAuth": "NONE"}) as stack:
        answer = ApiClient(stack.api_url, NoAuth()).get("/models")
        assert (answer.status, answer.json()) == (200, {"models": []})
        assert stack.outputs["ApiAuth"] == "NONE"
        assert "open to anyone" in _usage(stack)
