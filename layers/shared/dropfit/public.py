"""What the API may show: text without AWS internals, and small whatever it echoes.

Every message and reason the API answers passes through :func:`public_text`, which redacts S3
locations (to their key), ARNs, account ids and ECR image URIs, and bounds the text's size. The
full text stays where operators look (logs, the run record, the failure topic). Messages that
echo user input or model data cut what they echo with :func:`excerpt` and :func:`listing`, so
they stay readable, and :func:`public_text` caps whatever is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# An error body is {"error": {"code", "message"}}: a message of at most 6 KB as JSON (escapes
# counted) keeps it under 8 KB, whatever the model's names or the request.
MAX_MESSAGE_BYTES = 6 * 1024
ECHO_CHARS = 40  # of one echoed value or name
LISTED = 10  # names listed before "and N more"

_TAIL = r"(?:[^\s\"'<>,;()]*[^\s\"'<>,;().])?"  # up to a blank, quote or sentence end
_BUCKET = r"[a-z0-9][a-z0-9.-]*[a-z0-9]"
_REDACTIONS = (
    # s3://bucket/key -> key (the bucket is never shown); a bare s3://bucket -> "the bucket"
    (re.compile(r"\bs3://" + _BUCKET + "/(" + _TAIL + ")"), r"\1"),
    (re.compile(r"\bs3://" + _BUCKET), "the bucket"),
    # 123456789012.dkr.ecr.us-east-1.amazonaws.com/knn:1 (an account's private registry)
    (
        re.compile(r"\b\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?" + _TAIL),
        "(container image)",
    ),
    # arn:partition:service:region:account:resource
    (re.compile(r"\barn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d{0,12}:" + _TAIL), "(ARN)"),
    # a bare account id; not digits inside a name (job digests, model names quoted as 'x')
    (re.compile(r"(?<![\w'.-])\d{12}(?![\w'-]|\.\w)"), "(account id)"),
)


def redact(text: str) -> str:
    """``text`` without bucket names, ARNs, account ids or image URIs (S3 keys stay)."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def excerpt(text: str, limit: int = ECHO_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def listing(names: Iterable[object], shown: int = LISTED) -> str:
    """The first ``shown`` names (each cut to an excerpt), and how many more."""
    listed = list(names)
    head = ", ".join(excerpt(str(name)) for name in listed[:shown])
    return head + (f" and {len(listed) - shown:,} more" if len(listed) > shown else "")


def bounded(text: str, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    """``text`` cut so that it takes at most ``max_bytes`` as a JSON string (escapes counted)."""
    if len(text) * 12 <= max_bytes:  # no character takes more than 12 bytes (\\ud83c\\udf38)
        return text
    if len(json.dumps(text)) <= max_bytes:
        return text
    room = max_bytes - 40  # for the note of what was cut
    kept = 0
    for char in text:
        room -= len(json.dumps(char)) - 2
        if room < 0:
            break
        kept += 1
    return f"{text[:kept]}… ({len(text) - kept:,} more characters)"


def public_text(text: str) -> str:
    """What the API shows of a message or reason: redacted, then bounded."""
    return bounded(redact(text))
