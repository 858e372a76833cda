"""Names of models and SageMaker resources.

SageMaker names match ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``. The template limits the prefix to 12
characters and model names are cut to 36, so ``{prefix}-{model}-{digest}`` always fits in 63.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from dropfit.errors import InvalidModelName
from dropfit.public import excerpt

MODEL_NAME_MAX = 36
DIGEST_LENGTH = 12
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
MODEL_NAME_PATTERN = re.compile(r"[a-z0-9](?:-?[a-z0-9])*")


def model_name_from_key(key: str, incoming_prefix: str) -> str:
    """``incoming/Team A/Wine Quality.csv`` -> ``team-a-wine-quality``.

    Accents are dropped from their letters (``Café`` -> ``cafe``); lower case; every run of
    characters outside ``[a-z0-9]`` becomes one ``-``; trimmed; at most 36 characters.
    Sub-folders under the incoming prefix become part of the name.
    """
    relative = key[len(incoming_prefix) :] if key.startswith(incoming_prefix) else key
    if relative.lower().endswith(".csv"):
        relative = relative[: -len(".csv")]
    # NFKD splits "é" into "e" and a combining accent, which the ASCII encoding then drops
    ascii_only = unicodedata.normalize("NFKD", relative).encode("ascii", "ignore").decode()
    name = _NOT_ALLOWED.sub("-", ascii_only.lower()).strip("-")[:MODEL_NAME_MAX].strip("-")
    if not name:
        raise InvalidModelName(
            f"Cannot derive a model name from the key {key!r}: it needs at least one letter or "
            "digit before '.csv'."
        )
    return name


def check_model_name(name: str) -> str:
    """Validate a model name taken from a URL path."""
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
