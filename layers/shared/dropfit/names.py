"""Names of models and SageMaker resources.

SageMaker names match ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``. Every resource name starts with the
stack's prefix (``NAME_PREFIX``, at most 17 characters: template.yaml's constraint) and model
names are at most 32 characters, so ``{prefix}-{model}-{digest}`` always fits in
17 + 1 + 32 + 1 + 12 = 63.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from dropfit.errors import InvalidModelName
from dropfit.public import excerpt

PREFIX_MAX = 17
MODEL_NAME_MAX = 32
DIGEST_LENGTH = 12
# A model name that lost characters or was cut ends in this many hex digits of its key.
NAME_DIGEST_LENGTH = 8
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
MODEL_NAME_PATTERN = re.compile(r"[a-z0-9](?:-?[a-z0-9])*")
_CSV = ".csv"


def relative_key(key: str, incoming_prefix: str) -> str:
    """The key as the user named it, without the incoming prefix: ``a/b.csv``."""
    return key[len(incoming_prefix) :] if key.startswith(incoming_prefix) else key


def model_name_from_key(key: str, incoming_prefix: str) -> str:
    """``incoming/Team A/Wine Quality.csv`` -> ``team-a-wine-quality``.

    The key under the incoming prefix, without its ``.csv`` (any case), named by
    :func:`model_name`. Sub-folders under the incoming prefix become part of the name.
    """
    stem = relative_key(key, incoming_prefix)
    if stem.lower().endswith(_CSV):
        stem = stem[: -len(_CSV)]
    try:
        return model_name(stem)
    except InvalidModelName:
        raise InvalidModelName(
            f"Cannot derive a model name from the key {key!r}: it needs at least one letter or "
            "digit before '.csv'."
        ) from None


def model_name(text: str) -> str:
    """The naming rule: ``Wine Quality`` -> ``wine-quality``, ``売上2024`` -> ``2024-<digest>``.

    Accents are dropped from their letters (``Café`` -> ``cafe``); lower case; every run of
    characters outside ``[a-z0-9]`` becomes one ``-``; trimmed. A text that lost letters or digits
    with no ASCII form (other scripts, ``ß``), or whose name would be longer than 32
    characters, is cut to leave room for ``-`` and 8 hex digits of its own sha256 (in NFC), so
    that two different texts never share a name by losing what told them apart. A name is
    never longer than 32 characters, and a valid name is its own name.
    """
    # NFKD splits "é" into "e" and a combining accent (dropped); "ﬁ" becomes "fi".
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if c.isascii())
    name = _NOT_ALLOWED.sub("-", ascii_only.lower()).strip("-")
    # Other symbols (a dash, a tick) go the way of ASCII punctuation; a letter or digit is lost.
    lost = any(c.isalnum() and not c.isascii() for c in decomposed)
    if not lost and len(name) <= MODEL_NAME_MAX:
        if not name:
            raise InvalidModelName("A model name needs at least one letter or digit.")
        return name
    digest = hashlib.sha256(unicodedata.normalize("NFC", text).encode()).hexdigest()
    head = name[: MODEL_NAME_MAX - NAME_DIGEST_LENGTH - 1].strip("-")
    return f"{head}-{digest[:NAME_DIGEST_LENGTH]}" if head else digest[:NAME_DIGEST_LENGTH]


def model_name_from_path(text: str) -> str:
    """The model a URL path names: the naming rule applied to it (``IRIS`` -> ``iris``)."""
    try:
        return model_name(text)
    except InvalidModelName:
        raise InvalidModelName(
            "Invalid model name: a model name has at least one letter or digit (see GET /models)."
        ) from None


def check_model_name(name: str) -> str:
    """Validate a model name chosen by the user (the ``name`` option)."""
    if len(name) > MODEL_NAME_MAX or not MODEL_NAME_PATTERN.fullmatch(name):
        raise InvalidModelName(
            f"Invalid model name {excerpt(name)!r}: use lower-case letters, digits and single "
            f"hyphens, at most {MODEL_NAME_MAX} characters."
        )
    return name


def source_digest(bucket: str, key: str, version: str) -> str:
    """Deterministic id of one uploaded object version: the same upload always maps to it."""
    return hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()[:DIGEST_LENGTH]


def job_name(prefix: str, model: str, digest: str) -> str:
    """Training job name; also the SageMaker Model, EndpointConfig and production variant name."""
    return f"{prefix}-{model}-{digest}"


def endpoint_name(prefix: str, model: str) -> str:
    """The model's stable endpoint, updated in place on every retrain."""
    return f"{prefix}-{model}"


def model_from_job_name(prefix: str, job: str) -> str:
    """Inverse of :func:`job_name`."""
    head = f"{prefix}-"
    if not job.startswith(head) or len(job) <= len(head) + DIGEST_LENGTH + 1:
        raise InvalidModelName(f"{job!r} is not a Dropfit training job name")
    return job[len(head) : -(DIGEST_LENGTH + 1)]


def model_from_endpoint_name(prefix: str, endpoint: str) -> str:
    """Inverse of :func:`endpoint_name`."""
    head = f"{prefix}-"
    if not endpoint.startswith(head) or len(endpoint) == len(head):
        raise InvalidModelName(f"{endpoint!r} is not a Dropfit endpoint name")
    return endpoint[len(head) :]
