"""The bad-input corpus: ``cases.yaml`` read into cases a unit test and an end-to-end test share.

Each case is an upload (bytes, key, S3 metadata) and what its run must end with: the exact reason
(or the parts of it a library's wording does not decide), or, for valid uploads, what the
formatted dataset holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from tests.corpus.generators import GENERATORS

CORPUS = Path(__file__).resolve().parent
TESTS = CORPUS.parent
MANIFEST = CORPUS / "cases.yaml"
INCOMING = "incoming/"

Stage = Literal["options", "dataset", "naming"]


@dataclass(frozen=True)
class Accepted:
    """What a valid upload's dataset holds (fields left out are not checked)."""

    label_column: str
    features: list[str]
    classes: list[str] | None = None
    model: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    about: str
    key: str
    metadata: dict[str, str]
    source: str  # the file (relative to tests/) or the generator it comes from
    reason: str | None = None
    reason_parts: list[str] = field(default_factory=list)
    accepted: Accepted | None = None
    stage: Stage = "dataset"
    pipeline_only: bool = False
    known_bug: str | None = None

    @property
    def rejected(self) -> bool:
        return self.accepted is None

    @property
    def model(self) -> str:
        """The model name the upload gives (see README "Model names"); naming cases have none."""
        from dropfit.ingest import upload_model_name

        return upload_model_name(self.key, INCOMING, self.metadata)

    def data(self) -> bytes:
        if self.source in GENERATORS:
            return _generated(self.source)
        return (TESTS / self.source).read_bytes()

    def expected_reason(self, bucket: str = "") -> str | None:
        return None if self.reason is None else self.reason.format(bucket=bucket)

    def reason_matches(self, actual: str, bucket: str = "") -> bool:
        expected = self.expected_reason(bucket)
        if expected is not None:
            return actual == expected
        return all(part in actual for part in self.reason_parts)


@functools.cache
def _generated(name: str) -> bytes:
    return GENERATORS[name]()


def _case(entry: dict[str, Any]) -> Case:
    unknown = set(entry) - {
        "id",
        "about",
        "file",
        "generate",
        "key",
        "metadata",
        "reason",
        "reason_parts",
        "accepted",
        "stage",
        "pipeline_only",
        "known_bug",
    }
    if unknown:
        raise ValueError(f"case {entry.get('id')}: unknown fields {sorted(unknown)}")
    if ("file" in entry) == ("generate" in entry):
        raise ValueError(f"case {entry['id']}: give exactly one of file and generate")
    outcomes = [name for name in ("reason", "reason_parts", "accepted") if name in entry]
    if len(outcomes) != 1:
        raise ValueError(f"case {entry['id']}: give exactly one of reason, reason_parts, accepted")
    accepted = entry.get("accepted")
    return Case(
        id=entry["id"],
        about=entry.get("about", entry["id"]),
        key=entry.get("key", f"{INCOMING}corpus/{entry['id']}.csv"),
        metadata={str(k): str(v) for k, v in (entry.get("metadata") or {}).items()},
        source=entry.get("file") or entry["generate"],
        reason=str(entry["reason"]) if "reason" in entry else None,
        reason_parts=list(entry.get("reason_parts", [])),
        accepted=Accepted(**accepted) if accepted else None,
        stage=entry.get("stage", "dataset"),
        pipeline_only=bool(entry.get("pipeline_only", False)),
        known_bug=str(entry["known_bug"]) if "known_bug" in entry else None,
    )


@functools.cache
def load_cases() -> tuple[Case, ...]:
    """Every case of the manifest, in its order."""
    document = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    cases = tuple(_case(entry) for entry in document["cases"])
    ids = [case.id for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates}")
    return cases


def params(cases: Iterable[Case], **xfail: Any) -> list[Any]:
    """The cases as pytest params, one with a known bug a strict xfail (given ``xfail`` too)."""
    return [
        pytest.param(
            case,
            id=case.id,
            marks=(
                [pytest.mark.xfail(strict=True, reason=case.known_bug, **xfail)]
                if case.known_bug
                else []
            ),
        )
        for case in cases
    ]
