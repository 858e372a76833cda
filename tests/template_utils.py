"""Read template.yaml from tests: as written (short-form tags included) and as SAM translates it.

``translated_template()`` runs the SAM transform offline, the way ``sam validate`` does: local
code paths become dummy S3 URIs and no AWS call is made.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from dropfit_local.template import load_template as read_template_file

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as a dict; ``!Ref X`` reads as ``{"Ref": "X"}``, ``!Sub s`` as ``Fn::Sub``.

    The same loader as the local stack's, so tests read the template exactly as it does.
    """
    return read_template_file(path)


@functools.cache
def _translate(path: Path) -> dict[str, Any]:
    from boto3.session import Session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = load_template(path)
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


def translated_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The CloudFormation template SAM produces from ``path`` (a fresh copy on every call)."""
    return copy.deepcopy(_translate(path))
