"""Model names from S3 keys, and SageMaker resource names that always fit SageMaker's rules."""

from __future__ import annotations

import re

import pytest
from dropfit.errors import InvalidModelName
from dropfit.names import (
    DIGEST_LENGTH,
    MODEL_NAME_MAX,
    NAME_DIGEST_LENGTH,
    PREFIX_MAX,
    check_model_name,
    endpoint_name,
    job_name,
    model_from_endpoint_name,
    model_from_job_name,
    model_name,
    model_name_from_key,
    model_name_from_path,
    source_digest,
)
from hypothesis import given, settings
from hypothesis import strategies as st

INCOMING = "incoming/"
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# template.yaml: NamePrefix ^[a-z][a-z0-9]{0,7}$, then "-" and the stack id's 8 hex digits.
LONGEST_PREFIX = "abcdefgh-0123abcd"
PREFIXES = st.from_regex(r"\A[a-z][a-z0-9]{0,7}-[0-9a-f]{8}\Z")
KEYS = st.text(min_size=1, max_size=120).map(lambda name: f"{INCOMING}{name}.csv")


@pytest.mark.parametrize(
    ("key", "model"),
    [
        ("incoming/iris.csv", "iris"),
        ("incoming/Team A/Wine Quality.csv", "team-a-wine-quality"),
        ("incoming/IRIS.CSV", "iris"),
        ("incoming/my  data__v2.csv", "my-data-v2"),
        ("incoming/Café Crème.csv", "cafe-creme"),  # accents dropped, letters kept
        ("incoming/ÄÖÜ 2024.csv", "aou-2024"),
        ("incoming/ﬁle ².csv", "file-2"),  # compatibility forms have an ASCII form
        ("incoming/a/b/c.csv", "a-b-c"),
        ("incoming/data.csv.csv", "data-csv"),
        ("incoming/-leading and trailing-.csv", "leading-and-trailing"),
        ("incoming/notes.txt", "notes-txt"),
        ("elsewhere/x.csv", "elsewhere-x"),
    ],
)
def test_model_name_from_key(key: str, model: str) -> None:
    assert model_name_from_key(key, INCOMING) == model


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("売上2024.csv", "在庫2024.csv"),  # the CJK characters have no ASCII form
        ("Продажи2024.csv", "Закупки2024.csv"),  # noqa: RUF001 (Cyrillic on purpose)
        ("Straße.csv", "Strae.csv"),  # ß has no ASCII form: lost, so "strae-<digest>"
        (f"{'x' * 40}-first.csv", f"{'x' * 40}-second.csv"),  # differ after the 32nd character
        ("日本.csv", "中国.csv"),  # nothing but other scripts: the digest alone
    ],
)
def test_keys_that_lose_characters_or_are_cut_never_share_a_name(first: str, second: str) -> None:
    one = model_name_from_key(f"{INCOMING}{first}", INCOMING)
    other = model_name_from_key(f"{INCOMING}{second}", INCOMING)

    assert one != other
    assert re.search(rf"(^|-)[0-9a-f]{{{NAME_DIGEST_LENGTH}}}$", one), one
    assert check_model_name(one) == one
    assert check_model_name(other) == other


def test_a_lossy_name_keeps_what_it_could_and_a_stable_digest() -> None:
    name = model_name_from_key(f"{INCOMING}売上2024.csv", INCOMING)

    assert re.fullmatch(r"2024-[0-9a-f]{8}", name)
    assert model_name_from_key(f"{INCOMING}売上2024.CSV", INCOMING) == name  # same stem
    assert model_name("売上2024") == name


def test_long_names_are_cut_to_leave_room_for_their_digest() -> None:
    name = model_name_from_key(f"{INCOMING}{'x' * 40}.csv", INCOMING)

    assert len(name) == MODEL_NAME_MAX
    assert name.startswith("x" * (MODEL_NAME_MAX - NAME_DIGEST_LENGTH - 1) + "-")
    assert model_name_from_key(f"{INCOMING}{'x' * MODEL_NAME_MAX}.csv", INCOMING) == "x" * 32


def test_a_cut_never_leaves_a_double_hyphen() -> None:
    key = f"{INCOMING}{'a' * 22} b{'c' * 20}.csv"  # the cut falls right after the hyphen

    assert re.fullmatch(r"a{22}-[0-9a-f]{8}", model_name_from_key(key, INCOMING))


@pytest.mark.parametrize(
    ("key", "other"),
    [
        ("iris.csv", "IRIS.csv"),
        ("a/b.csv", "a-b.csv"),
        ("Café.csv", "cafe.csv"),
        ("x.csv", "x.Csv"),
    ],
)
def test_readable_names_of_different_keys_may_meet(key: str, other: str) -> None:
    """Case, accents and punctuation give the same readable name: ownership refuses the second
    key (dropfit.ingest), instead of a digest that would make the tutorial's names unreadable."""
    assert model_name_from_key(f"{INCOMING}{key}", INCOMING) == model_name_from_key(
        f"{INCOMING}{other}", INCOMING
    )


@pytest.mark.parametrize("key", ["incoming/!!!.csv", "incoming/.csv", "incoming/-_-.CSV"])
def test_a_key_without_letters_or_digits_has_no_model_name(key: str) -> None:
    with pytest.raises(InvalidModelName) as error:
        model_name_from_key(key, INCOMING)

    assert error.value.message == (
        f"Cannot derive a model name from the key {key!r}: it needs at least one letter or digit "
        "before '.csv'."
    )
    assert error.value.status == 400


@settings(max_examples=300, deadline=None)
@given(key=KEYS)
def test_any_key_gives_a_valid_model_name_or_a_named_error(key: str) -> None:
    try:
        model = model_name_from_key(key, INCOMING)
    except InvalidModelName:
        return

    assert check_model_name(model) == model
    assert len(model) <= MODEL_NAME_MAX
    assert model_name(model) == model  # a name is its own name: GET /models/{name} finds it


@settings(max_examples=200, deadline=None)
@given(prefix=PREFIXES, key=KEYS, version=st.text(max_size=40))
def test_every_generated_name_matches_sagemakers_pattern(
    prefix: str, key: str, version: str
) -> None:
    try:
        model = model_name_from_key(key, INCOMING)
    except InvalidModelName:
        return
    digest = source_digest("bucket", key, version)

    job = job_name(prefix, model, digest)
    endpoint = endpoint_name(prefix, model)

    assert SAGEMAKER_NAME.match(job), job
    assert SAGEMAKER_NAME.match(endpoint), endpoint
    assert model_from_job_name(prefix, job) == model
    assert model_from_endpoint_name(prefix, endpoint) == model


def test_the_longest_names_fit_in_63_characters() -> None:
    model = "m" * MODEL_NAME_MAX
    job = job_name(LONGEST_PREFIX, model, source_digest("b", "k", "v"))

    assert len(job) == PREFIX_MAX + 1 + MODEL_NAME_MAX + 1 + DIGEST_LENGTH
    assert len(job) <= 63
    assert SAGEMAKER_NAME.match(job)
    assert model_from_job_name(LONGEST_PREFIX, job) == model


def test_job_and_endpoint_names_round_trip() -> None:
    job = job_name("dropfit", "team-a-wine-quality", "0123456789ab")

    assert job == "dropfit-team-a-wine-quality-0123456789ab"
    assert model_from_job_name("dropfit", job) == "team-a-wine-quality"
    assert endpoint_name("dropfit", "iris") == "dropfit-iris"
    assert model_from_endpoint_name("dropfit", "dropfit-iris") == "iris"


@pytest.mark.parametrize("job", ["other-iris-0123456789ab", "dropfit-0123456789ab", "dropfit-"])
def test_foreign_job_names_are_refused(job: str) -> None:
    with pytest.raises(InvalidModelName, match="is not a Dropfit training job name"):
        model_from_job_name("dropfit", job)


@pytest.mark.parametrize("endpoint", ["other-iris", "dropfit-", "dropfit"])
def test_foreign_endpoint_names_are_refused(endpoint: str) -> None:
    with pytest.raises(InvalidModelName, match="is not a Dropfit endpoint name"):
        model_from_endpoint_name("dropfit", endpoint)


def test_source_digest_is_deterministic_and_differs_per_version() -> None:
    first = source_digest("bucket", "incoming/iris.csv", "v1")

    assert first == source_digest("bucket", "incoming/iris.csv", "v1")
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert first != source_digest("bucket", "incoming/iris.csv", "v2")
    assert first != source_digest("bucket", "incoming/iris2.csv", "v1")
    assert first != source_digest("other", "incoming/iris.csv", "v1")


def test_source_digest_fields_cannot_run_into_each_other() -> None:
    assert source_digest("b", "ab", "c") != source_digest("b", "a", "bc")


@pytest.mark.parametrize("name", ["iris", "team-a-wine-quality", "a", "0", "x" * MODEL_NAME_MAX])
def test_valid_chosen_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Iris", "-iris", "iris-", "a--b", "a_b", "x" * (MODEL_NAME_MAX + 1), "ïris", "iris\n"],
)
def test_invalid_chosen_model_names(name: str) -> None:
    with pytest.raises(InvalidModelName) as error:
        check_model_name(name)

    assert error.value.message == (
        f"Invalid model name {name!r}: use lower-case letters, digits and single hyphens, at most "
        f"{MODEL_NAME_MAX} characters."
    )


def test_an_invalid_chosen_name_is_not_echoed_in_full() -> None:
    with pytest.raises(InvalidModelName) as error:
        check_model_name("x" * 5000)

    assert len(error.value.message) < 200


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("iris", "iris"),
        ("IRIS", "iris"),
        ("Iris", "iris"),
        ("Café", "cafe"),
        ("Team A_Wine", "team-a-wine"),
        ("売上2024", model_name_from_key(f"{INCOMING}売上2024.csv", INCOMING)),
        ("x" * 40, model_name_from_key(f"{INCOMING}{'x' * 40}.csv", INCOMING)),
    ],
)
def test_a_url_names_a_model_by_the_naming_rule(path: str, model: str) -> None:
    assert model_name_from_path(path) == model


@pytest.mark.parametrize("path", ["", "-", "--", "_", "!!!"])
def test_a_url_without_letters_or_digits_names_no_model(path: str) -> None:
    with pytest.raises(InvalidModelName) as error:
        model_name_from_path(path)

    assert error.value.message == (
        "Invalid model name: a model name has at least one letter or digit (see GET /models)."
    )
