"""Generate the KnnImage mapping of template.yaml from the sagemaker SDK.

The SDK knows, for every region, which ECR registry serves the built-in k-NN image
(``sagemaker.core.image_uris.retrieve("knn", region)``). This script writes that knowledge into the
block between the ``# BEGIN KnnImage`` and ``# END KnnImage`` lines of the template, so the stack
needs no SDK at deploy time and the functions read the URI from ``KNN_IMAGE_URI``.

    uv run python scripts/gen_knn_image_map.py           # rewrite the block in place
    uv run python scripts/gen_knn_image_map.py --print   # print the block
    uv run python scripts/gen_knn_image_map.py --check   # exit 1 if the template has drifted
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
FRAMEWORK = "knn"
BEGIN = "  # BEGIN KnnImage"
END = "  # END KnnImage"
_BLOCK = re.compile(rf"^{re.escape(BEGIN)}.*?\n(?P<body>.*?)^{re.escape(END)}.*?$", re.M | re.S)


def knn_image_uris() -> dict[str, str]:
    """Every region the SDK's k-NN config lists, mapped to ``retrieve("knn", region)``."""
    with warnings.catch_warnings():
        # sagemaker-core's modules carry invalid escape sequences in docstrings.
        warnings.simplefilter("ignore", SyntaxWarning)
        from sagemaker.core.image_uris import config_for_framework, retrieve

    config = config_for_framework(FRAMEWORK)
    regions = {
        region for version in config["versions"].values() for region in version["registries"]
    }
    return {region: retrieve(FRAMEWORK, region) for region in sorted(regions)}


def render(uris: dict[str, str]) -> str:
    """The mapping's YAML body (two-space indented, as under ``Mappings:``)."""
    lines = ["  KnnImage:"]
    for region, uri in uris.items():
        lines += [f"    {region}:", f"      Uri: {uri}"]
    return "\n".join(lines) + "\n"


def replace_block(template_text: str, body: str) -> str:
    """The template with the generated block's body replaced by ``body``."""
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

    body = render(knn_image_uris())
    if args.print:
        sys.stdout.write(body)
        return 0
    current = args.template.read_text()
    updated = replace_block(current, body)
    if args.check:
        if updated != current:
            print(f"{args.template}: KnnImage mapping is out of date; run {Path(__file__).name}")
            return 1
        return 0
    if updated != current:
        args.template.write_text(updated)
        print(f"{args.template}: KnnImage mapping updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
