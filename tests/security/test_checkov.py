"""checkov on template.yaml as written and as SAM translates it: nothing fails, every skip says why.

checkov pins libraries the runtime also uses to older versions (urllib3 1.x, packaging 23), so it
cannot share the project's environment without moving the Lambda's pins. It runs as a uv tool
instead: an isolated environment built from PyPI with the exact versions of
``checkov-constraints.txt`` and cached by uv, so only the first run on a machine downloads it.
``--skip-download`` keeps checkov from calling its vendor's API: it runs offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.template_utils import TEMPLATE_PATH, load_template, translated_template

HERE = Path(__file__).resolve().parent
CHECKOV = "checkov==3.2.459"
CONSTRAINTS = HERE / "checkov-constraints.txt"


def _uv() -> list[str]:
    """uv as `uv run` reports it, else on PATH, else as a module (pip install uv)."""
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    if found := shutil.which("uv"):
        return [found]
    if importlib.util.find_spec("uv"):
        return [sys.executable, "-m", "uv"]
    pytest.fail("uv is needed to run checkov (pip install uv, or run the tests with `uv run`)")


def _skips_in_template() -> dict[str, dict[str, str]]:
    """resource -> {check id: comment}, from each resource's Metadata.checkov.skip."""
    skips: dict[str, dict[str, str]] = {}
    for name, resource in load_template()["Resources"].items():
        entries = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        skips[name] = {entry["id"]: str(entry.get("comment", "")).strip() for entry in entries}
    return {name: found for name, found in skips.items() if found}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    translated = tmp_path_factory.mktemp("checkov") / "translated.json"
    translated.write_text(json.dumps(translated_template(), indent=1))
    command = [
        *_uv(),
        "tool",
        "run",
        "--python",
        sys.executable,
        "--from",
        CHECKOV,
        "--constraints",
        str(CONSTRAINTS),
        "checkov",
        "--skip-download",
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--compact",
        "--file",
        str(TEMPLATE_PATH),
        "--file",
        str(translated),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=240, check=False
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: some check failed
    found = json.loads(done.stdout)
    if isinstance(found, list):  # one report per framework; only cloudformation runs
        (found,) = found
    return {"raw": found, "translated_path": translated.name}


def _by_file(report: dict[str, Any], kind: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in report["raw"]["results"][kind]:
        grouped[Path(check["file_path"]).name].append(check)
    return grouped


def test_checkov_finds_no_failed_check_in_either_template(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({Path(c['file_path']).name}): {c['check_name']}"
        for c in report["raw"]["results"]["failed_checks"]
    ]
    passed = _by_file(report, "passed_checks")

    assert not failed, "\n".join(failed)
    assert set(passed) == {TEMPLATE_PATH.name, report["translated_path"]}, "both were scanned"


def test_every_skip_says_why_next_to_its_resource() -> None:
    skips = _skips_in_template()

    assert skips, "no skips: then this test and the Metadata can go"
    for resource, entries in skips.items():
        for check, comment in entries.items():
            assert len(comment.split()) >= 8, f"{resource} skips {check} without a real reason"


def test_every_skip_still_silences_a_check_in_both_templates(report: dict[str, Any]) -> None:
    """No stale skip: each one matches a check checkov would otherwise fail or run."""
    skipped = {
        (name, c["resource"].split(".", 1)[1], c["check_id"])
        for name, checks in _by_file(report, "skipped_checks").items()
        for c in checks
    }
    expected = {
        (file, resource, check)
        for resource, entries in _skips_in_template().items()
        for check in entries
        for file in (TEMPLATE_PATH.name, report["translated_path"])
    }

    assert expected - skipped == set()
    assert skipped - expected == set(), "skipped without a Metadata entry (--skip-check?)"
