"""Which Dropfit stack a command talks to: the local stack (``.local/outputs.json``) or a
deployed one (its CloudFormation Outputs), with an API client authorised as that stack requires.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dropfit_cli.api import ApiClient, Auth, NoAuth, SigV4, auth_for

# The local stack's state folder (``dropfit up`` writes outputs.json there).
STATE_DIR_VARIABLE = "DROPFIT_STATE_DIR"
DEFAULT_STATE_DIR = Path(".local")
TOKEN_VARIABLE = "DROPFIT_TOKEN"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class NoTarget(RuntimeError):
    """No stack to talk to: the local one is not up, or the named one cannot be read."""


@dataclass(frozen=True)
class Target:
    """A stack's Outputs and how to reach it."""

    name: str  # "local" or the CloudFormation stack's name
    outputs: dict[str, Any]
    region: str
    auth: Auth = field(default_factory=NoAuth)

    @property
    def is_local(self) -> bool:
        return "AwsEndpointUrl" in self.outputs

    @property
    def api_url(self) -> str:
        return str(self.outputs["ApiUrl"]).rstrip("/")

    @property
    def bucket(self) -> str:
        return str(self.outputs["BucketName"])

    @property
    def incoming_prefix(self) -> str:
        return str(self.outputs.get("IncomingPrefix", "incoming/"))

    def api(self) -> ApiClient:
        return ApiClient(self.api_url, self.auth)

    def client(self, service: str) -> Any:
        """A boto3 client on this stack's endpoints (local credentials for the local stack)."""
        import boto3  # only the commands that upload or read CloudFormation pay for it

        if self.is_local:
            endpoint = self.outputs["AwsEndpointUrl"]
            if service.startswith("sagemaker"):
                endpoint = self.outputs["SageMakerEndpointUrl"]
            return boto3.client(  # type: ignore[call-overload]
                service, endpoint_url=endpoint, region_name=self.region, **LOCAL_CREDENTIALS
            )
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]


def state_dir() -> Path:
    """The local stack's state folder: ``$DROPFIT_STATE_DIR``, else ``./.local``."""
    return Path(os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR)


def resolve(stack: str | None, region: str | None, token: str | None = None) -> Target:
    """``--stack NAME [--region]``: that deployed stack; otherwise the local stack if it is up."""
    token = token or os.environ.get(TOKEN_VARIABLE)
    if stack:
        return deployed(stack, region, token)
    return local(state_dir(), token)


def local(folder: Path, token: str | None = None) -> Target:
    """The local stack whose ``outputs.json`` is in ``folder``, if its HTTP API answers."""
    outputs = local_outputs(folder)
    region = str(outputs.get("Region", "us-east-1"))
    return Target("local", outputs, region, _local_auth(outputs, region, token))


def local_outputs(folder: Path) -> dict[str, Any]:
    """The outputs of the local stack of ``folder``, if it runs (no API authorisation needed:
    ``dropfit destroy`` talks to its AWS endpoints only)."""
    path = folder / "outputs.json"
    if not path.is_file():
        raise NoTarget(
            f"no local stack ({path} does not exist): start one with `dropfit up` "
            "(or `make up`), or name a deployed stack with --stack NAME"
        )
    outputs = json.loads(path.read_text())
    if not _listening(str(outputs["ApiUrl"])):
        raise NoTarget(
            f"the local stack of {path} is not running: start it with `dropfit up` "
            "(or `make up`), or name a deployed stack with --stack NAME"
        )
    return dict(outputs)


def deployed(stack: str, region: str | None, token: str | None = None) -> Target:
    """A deployed stack: its Outputs from CloudFormation, its API signed as ``ApiAuth`` says."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        raise NoTarget(f"stack {stack!r}: {error.response['Error']['Message']}") from None
    except BotoCoreError as error:
        raise NoTarget(f"stack {stack!r}: {error}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = sorted({"ApiUrl", "BucketName"} - set(outputs))
    if missing:
        raise NoTarget(
            f"stack {stack!r} has no {', '.join(missing)} output: is it a Dropfit stack?"
        )
    chosen_region = cloudformation.meta.region_name
    # ApiAuth's default is IAM; a signature costs nothing where the API does not check one.
    mode = str(outputs.get("ApiAuth", "IAM"))
    return Target(stack, outputs, chosen_region, _auth(mode, chosen_region, token))


def _local_auth(outputs: dict[str, Any], region: str, token: str | None) -> Auth:
    """The local API's ``ApiAuth``: signed with its own keys (IAM), a token, or nothing."""
    mode = str(outputs.get("ApiAuth", "NONE")).upper()
    if mode == "IAM":
        from botocore.credentials import Credentials

        keys = Credentials(str(outputs["ApiAccessKeyId"]), str(outputs["ApiSecretAccessKey"]))
        return SigV4(region, keys)
    if mode == "JWT" and not token:
        raise NoTarget(
            "the local API is deployed with ApiAuth=JWT: give a token of its issuer with --token "
            f"or ${TOKEN_VARIABLE} (`python -m dropfit_local token` mints one)"
        )
    return _auth(mode, region, token)


def _auth(mode: str, region: str, token: str | None) -> Auth:
    from dropfit_cli.api import ApiAuthError

    try:
        return auth_for(mode, region=region, token=token)
    except ApiAuthError as error:
        hint = f" (--token or ${TOKEN_VARIABLE})" if mode.upper() == "JWT" else ""
        raise NoTarget(f"{error}{hint}") from None


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 1):
            return True
    except OSError:
        return False
