"""What the API may show: AWS internals redacted, echoes and messages bounded."""

from __future__ import annotations

import json

import pytest
from dropfit.public import MAX_MESSAGE_BYTES, bounded, excerpt, listing, public_text, redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "s3://dropfit-data-123456789012/incoming/leaky.csv was deleted.",
            "incoming/leaky.csv was deleted.",
        ),
        ("See s3://bkt/incoming/my data.csv, please", "See incoming/my data.csv, please"),
        ("Access denied to s3://bkt.", "Access denied to the bucket."),
        (
            "Could not assume arn:aws:iam::123456789012:role/dropfit-Role-1AB. Check it.",
            "Could not assume (ARN). Check it.",
        ),
        (
            "Key arn:aws-cn:kms:cn-north-1:123456789012:key/abc-1 is disabled",
            "Key (ARN) is disabled",
        ),
        (
            "image 382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1 not found",
            "image (container image) not found",
        ),
        ("Account 123456789012 has no quota.", "Account (account id) has no quota."),
        ("account id: 123456789012", "account id: (account id)"),
    ],
    ids=[
        "s3-uri",
        "key-with-space",
        "bare-bucket",
        "arn",
        "china-arn",
        "ecr-image",
        "account",
        "colon",
    ],
)
def test_aws_internals_are_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Replaced by dropfit-iris-012345678901.",  # a job name whose digest is all digits
        "No model named '202401011230'.",  # a model named after a timestamp
        "CSV row 1, column 'x': '1234567890123' is not a finite decimal number.",
        "instances[0][0] = 3.123456789012e+39 is too large",
    ],
)
def test_names_and_numbers_that_only_look_like_account_ids_stay(text: str) -> None:
    assert redact(text) == text


def test_an_excerpt_says_how_much_was_cut() -> None:
    assert excerpt("x" * 40) == "x" * 40
    assert excerpt("x" * 5_000) == "x" * 40 + "… (4,960 more characters)"


def test_a_listing_shows_ten_names_and_counts_the_rest() -> None:
    assert listing(["a", "b"]) == "a, b"
    assert listing(f"f{i}" for i in range(1_000)) == (
        "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 990 more"
    )


@pytest.mark.parametrize("char", ["x", "é", "特", "🌸", '"', "\x00"])
def test_a_message_takes_at_most_its_bytes_as_json(char: str) -> None:
    text = char * 100_000

    shown = bounded(text)

    assert len(json.dumps(shown)) <= MAX_MESSAGE_BYTES
    assert shown.endswith(" more characters)")
    assert shown.startswith(char * 100)


def test_a_short_message_is_unchanged() -> None:
    assert public_text("Model 'iris' is ready.") == "Model 'iris' is ready."
