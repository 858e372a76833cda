"""Read template.yaml from tests: as written (short-form tags included) and as SAM translates it.

``translated_template()`` runs the SAM transform offline, the way ``sam validate`` does: local
code paths become dummy S3 URIs and no AWS call is made.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"

_SCALAR_FUNCTIONS = ("Ref", "Condition")
_FUNCTIONS = (
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
)


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short forms into their long, JSON forms."""


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_function(name: str) -> None:
    key = name if name in _SCALAR_FUNCTIONS else f"Fn::{name}"

    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct(node, loader)}

    _CfnLoader.add_constructor(f"!{name}", constructor)


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct(node, loader)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


for _name in (*_SCALAR_FUNCTIONS, *_FUNCTIONS):
    _add_function(_name)
_CfnLoader.add_constructor("!GetAtt", _get_att)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as a dict; ``!Ref X`` reads as ``{"Ref": "X"}``, ``!Sub s`` as ``Fn::Sub``."""
    with path.open() as stream:
        return yaml.load(stream, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects


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
