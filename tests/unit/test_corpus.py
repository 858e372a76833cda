"""Every upload of the bad-input corpus (tests/corpus/cases.yaml) gets its exact reason.

The same checks the format function makes, in its order: the key names the model, the S3 metadata
parses into options, the bytes format into a dataset. The end-to-end twin of this test drives the
same manifest through the local stack's S3 API (tests/e2e/test_corpus_e2e.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dropfit.dataset import format_dataset
from dropfit.errors import InvalidUpload
from dropfit.names import MODEL_NAME_PATTERN
from dropfit.options import parse_options

from tests.corpus import CORPUS, TESTS, Case, load_cases, params
from tests.template_utils import load_template

CASES = load_cases()
DEFAULT_K = int(load_template()["Parameters"]["DefaultK"]["Default"])


def _refusal(case: Case) -> str | None:
    """Run the case as the format function does; the reason it is refused, or None."""
    try:
        case.model  # noqa: B018 (the property names the model, or refuses the upload)
    except InvalidUpload as error:
        assert case.stage == "naming", f"the key was refused: {error.message}"
        return error.message
    assert case.stage != "naming", "the key named a model"
    try:
        options = parse_options(case.metadata)
    except InvalidUpload as error:
        assert case.stage == "options", f"the options were refused: {error.message}"
        return error.message
    assert case.stage != "options", "the options were accepted"
    try:
        dataset = format_dataset(case.data(), options, DEFAULT_K)
    except InvalidUpload as error:
        return error.message
    accepted = case.accepted
    assert accepted is not None, "the upload was accepted"
    meta = dataset.metadata
    assert (meta.label_column, meta.feature_names) == (accepted.label_column, accepted.features)
    if accepted.classes is not None:
        assert meta.classes == accepted.classes
    if accepted.model is not None:
        assert case.model == accepted.model
    return None


@pytest.mark.parametrize(
    "case", params((c for c in CASES if not c.pipeline_only), raises=AssertionError)
)
def test_upload_ends_with_its_documented_reason(case: Case) -> None:
    reason = _refusal(case)

    if case.rejected:
        assert reason is not None, f"{case.id} ({case.about}) was accepted"
        expected = case.expected_reason() or f"a reason containing {case.reason_parts}"
        assert case.reason_matches(reason), f"\n  got:      {reason}\n  expected: {expected}"
    else:
        assert reason is None, f"{case.id} ({case.about}) was refused: {reason}"


def test_corpus_covers_at_least_thirty_hostile_uploads() -> None:
    rejected = [case for case in CASES if case.rejected]
    assert len(rejected) >= 30
    assert any(not case.rejected for case in CASES), "and valid ones that must keep working"


def test_every_case_has_its_own_model_so_runs_never_mix() -> None:
    named = [case for case in CASES if case.stage != "naming"]
    models = [case.model for case in named]
    assert len(set(models)) == len(models)
    assert all(MODEL_NAME_PATTERN.fullmatch(model) for model in models)


def test_every_committed_file_is_a_case() -> None:
    used = {Path(case.source) for case in CASES}
    committed = {path.relative_to(TESTS) for path in (CORPUS / "files").iterdir()}
    assert committed <= used, f"files no case uses: {sorted(map(str, committed - used))}"
