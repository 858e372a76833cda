"""Generate the SklearnProcessingImage mapping of template.yaml from the sagemaker SDK.

The Processing jobs that format large uploads (dropfit.processing) run in the AWS-maintained
scikit-learn image, the one the SDK's ``SKLearnProcessor`` uses:
``image_uris.retrieve("sklearn", region, version=VERSION, image_scope="training")``. This script
writes it for every region the SDK lists into the block between ``# BEGIN SklearnProcessingImage``
and ``# END SklearnProcessingImage``, as scripts/gen_knn_image_map.py does for the k-NN image.

    uv run python scripts/gen_sklearn_image_map.py           # rewrite the block in place
    uv run python scripts/gen_sklearn_image_map.py --check   # exit 1 if the template has drifted
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
FRAMEWORK = "sklearn"
# Python 3.12 (the tag says so): the dropfit package needs 3.11 or later.
VERSION = "1.4-2-py312"
MAPPING = "SklearnProcessingImage"
BEGIN = f"  # BEGIN {MAPPING}"
END = f"  # END {MAPPING}"
_BLOCK = re.compile(rf"^{re.escape(BEGIN)}.*?\n(?P<body>.*?)^{re.escape(END)}.*?$", re.M | re.S)


def sklearn_image_uris() -> dict[str, str]:
    """Every region of the SDK's scikit-learn VERSION, mapped to its image URI."""
    with warnings.catch_warnings():
        # sagemaker-core's modules carry invalid escape sequences in docstrings.
        warnings.simplefilter("ignore", SyntaxWarning)
        from sagemaker.core.image_uris import config_for_framework, retrieve

    config = config_for_framework(FRAMEWORK)["training"]
    regions = sorted(config["versions"][VERSION]["registries"])
    return {
        region: retrieve(FRAMEWORK, region, version=VERSION, image_scope="training")
        for region in regions
    }


def render(uris: dict[str, str]) -> str:
    """The mapping's YAML body (two-space indented, as under ``Mappings:``)."""
    lines = [f"  {MAPPING}:"]
    for region, uri in uris.items():
        lines += [f"    {region}:", f"      Uri: {uri}"]
    return "\n".join(lines) + "\n"


def replace_block(template_text: str, body: str) -> str:
    match = _BLOCK.search(template_text)
    if match is None:
        raise SystemExit(f"{TEMPLATE.name}: no '{BEGIN.strip()}' ... '{END.strip()}' block found")
    return template_text[: match.start("body")] + body + template_text[match.end("body") :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the template has drifted")
    mode.add_argument("--print", action="store_true", help="print the block, change nothing")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)

    body = render(sklearn_image_uris())
    if args.print:
        sys.stdout.write(body)
        return 0
    current = args.template.read_text()
    updated = replace_block(current, body)
    if args.check:
        if updated != current:
            print(f"{args.template}: {MAPPING} mapping is out of date; run {Path(__file__).name}")
            return 1
        return 0
    if updated != current:
        args.template.write_text(updated)
        print(f"{args.template}: {MAPPING} mapping updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
