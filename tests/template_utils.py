"""Read template.yaml from tests: as written (short-form tags included) and as SAM translates it.

``translated_template()`` runs the template's transforms offline, the way ``sam validate`` does:
first what ``AWS::LanguageExtensions`` does for us (it resolves the ``Fn::If`` that picks the HTTP
API's authorizer from the parameters), then SAM; local code paths become dummy S3 URIs and no AWS
call is made.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from dropfit_local.template import Resolver
from dropfit_local.template import load_template as read_template_file

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
# The stack behind events/env.json: its SageMaker prefix (NAME_PREFIX) is NamePrefix's default,
# "dropfit", then the first group of this id's UUID.
EXAMPLE_STACK_ID = (
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/dropfit/"
    "1c2fa620-982a-11e3-aff7-50e2416294e0"
)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as a dict; ``!Ref X`` reads as ``{"Ref": "X"}``, ``!Sub s`` as ``Fn::Sub``.

    The same loader as the local stack's, so tests read the template exactly as it does.
    """
    return read_template_file(path)


@functools.cache
def _translate(path: Path, parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    from boto3.session import Session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = load_template(path)
    _apply_language_extensions(template, dict(parameters))
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for uri_key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(uri_key), str):
                properties[uri_key] = f"s3://dummy-bucket/{properties[uri_key].strip('/')}.zip"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        # Only the pseudo parameters (region, partition) come from the session: no credentials.
        boto_session=Session(region_name=REGION),
    )
    translated: dict[str, Any] = translator.translate(
        sam_template=template,
        parameter_values={},
        # The translator resolves AWS managed policy names from its bundled list; nothing to add.
        get_managed_policy_map=dict,
    )
    return translated


def translated_template(
    path: Path = TEMPLATE_PATH, parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """The CloudFormation template the transforms produce from ``path`` with ``parameters`` (the
    defaults unless given); a fresh copy on every call."""
    return copy.deepcopy(_translate(path, tuple(sorted((parameters or {}).items()))))


def _apply_language_extensions(template: dict[str, Any], parameters: dict[str, str]) -> None:
    """Resolve the HTTP APIs' ``Auth`` for ``parameters``, as ``AWS::LanguageExtensions`` does
    before SAM reads it (SAM accepts no intrinsic function there). SAM CLI's own offline version
    of the transform is not used: it also flattens ``Fn::Sub``s that name resources, which the
    real transform leaves for CloudFormation."""
    resolver = Resolver(template, parameters=parameters)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::HttpApi" and "Auth" in properties:
            properties["Auth"] = resolver.resolve(properties["Auth"])
