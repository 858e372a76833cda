"""The built-in k-NN container's inference contract: request formats and response formats.

Requests (``Content-Type``): ``text/csv`` (feature rows, no label; ``label_size`` parameter
honoured), ``application/json`` (``{"instances": [{"features": [...]}, {"data": {"features":
{"values": [...]}}}]}``, sparse ``keys``/``shape`` accepted too), ``application/jsonlines``
(one such instance per line) and ``application/x-recordio-protobuf`` (records whose
``values`` feature tensor, dense or sparse, is the instance). Responses (``Accept``):
``application/json`` (the default), ``application/jsonlines`` and
``application/x-recordio-protobuf`` (one record per instance, its label map holding
``predicted_label``); ``; verbose=true`` adds the neighbours' ``distances`` and ``labels``,
nearest first. Anything else is rejected the way the container does: 415 for the content
type, 406 for the accept type, 400 for a payload it cannot evaluate.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dropfit import recordio

from dropfit_local.knn import F32, InferenceInputError, KnnModel, Predictions

CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines", recordio.CONTENT_TYPE)
ACCEPT_TYPES = ("application/json", "application/jsonlines", recordio.CONTENT_TYPE)
DEFAULT_ACCEPT = "application/json"


@dataclass(frozen=True)
class MediaType:
    """A parsed media type such as ``application/json; verbose=true``."""

    essence: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> MediaType:
        """Parse one media type; parameter names and the essence are case-insensitive."""
        essence, *raw_params = (part.strip() for part in value.split(";"))
        params: dict[str, str] = {}
        for raw in raw_params:
            name, _, param_value = raw.partition("=")
            if name:
                params[name.strip().lower()] = param_value.strip().strip('"')
        return cls(essence.lower(), params)


def _unevaluable(detail: str) -> InferenceInputError:
    return InferenceInputError(f"Unable to evaluate payload provided: {detail}")


def _decode(body: bytes, media: MediaType) -> str:
    encoding = media.params.get("charset") or media.params.get("encoding") or "utf-8"
    try:
        return body.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise _unevaluable(f"the body is not valid {encoding} text ({exc})") from None


def _csv_features(text: str, label_size: int) -> F32:
    if not text.strip():
        raise _unevaluable("the payload is empty")
    try:
        rows = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise _unevaluable(str(exc).split("; use `usecols`", 1)[0]) from None
    return rows[:, label_size:]


def _instance_values(instance: Any) -> Any:
    if not isinstance(instance, dict):
        raise _unevaluable("every instance must be a JSON object")
    if "features" in instance:
        return instance["features"]
    data = instance.get("data")
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, dict) or "values" not in features:
        raise _unevaluable('an instance has neither "features" nor "data.features.values"')
    if "keys" not in features:
        return features["values"]
    # Sparse form: {"keys": [...], "values": [...], "shape": [feature_dim]}.
    keys, values, shape = features["keys"], features["values"], features.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)):
        raise _unevaluable('a sparse instance needs "shape": [feature_dim]')
    try:
        dense = np.zeros(shape[0], np.float32)
        dense[np.asarray(keys, dtype=np.intp)] = np.asarray(values, dtype=np.float32)
    except (ValueError, IndexError, TypeError) as exc:
        raise _unevaluable(f"invalid sparse instance ({exc})") from None
    return dense


def _json_features(instances: Iterable[Any]) -> F32:
    rows = [_instance_values(instance) for instance in instances]
    if not rows:
        raise _unevaluable("no instances in the payload")
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError):
        raise _unevaluable(
            "the instances must all be lists of numbers of the same length"
        ) from None
    if matrix.ndim != 2:
        raise _unevaluable("every instance's features must be a flat list of numbers")
    return matrix


def parse_request(body: bytes, content_type: str | None) -> F32:
    """Decode a request body into a ``(rows, features)`` float32 matrix."""
    media = MediaType.parse(content_type or "")
    if media.essence not in CONTENT_TYPES:
        shown = content_type or "(none)"
        raise InferenceInputError(
            f"Content type {shown} is not supported by this algorithm; use one of "
            f"{', '.join(CONTENT_TYPES)}",
            status_code=415,
        )
    if media.essence == recordio.CONTENT_TYPE:
        try:
            features, _ = recordio.dense_rows(recordio.decode(body))
        except recordio.RecordIOError as exc:
            raise _unevaluable(f"invalid recordIO-protobuf ({exc})") from None
        if not features.size:
            raise _unevaluable("no records in the payload")
        return features
    text = _decode(body, media)
    if media.essence == "text/csv":
        label_size = media.params.get("label_size", "0")
        if not label_size.isdigit():
            raise _unevaluable(f"label_size must be a non-negative integer, got {label_size!r}")
        return _csv_features(text, int(label_size))
    try:
        if media.essence == "application/json":
            document = json.loads(text)
            if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
                raise _unevaluable('the JSON payload must be {"instances": [...]}')
            return _json_features(document["instances"])
        return _json_features(json.loads(line) for line in text.splitlines() if line.strip())
    except json.JSONDecodeError as exc:
        raise _unevaluable(f"invalid JSON ({exc})") from None


def choose_accept(accept: str | None) -> MediaType:
    """The response media type for an ``Accept`` header (first supported entry wins)."""
    if not accept:
        return MediaType(DEFAULT_ACCEPT)
    for entry in accept.split(","):
        media = MediaType.parse(entry)
        if media.essence in ("*/*", "application/*"):
            return MediaType(DEFAULT_ACCEPT, media.params)
        if media.essence in ACCEPT_TYPES:
            return media
    raise InferenceInputError(
        f"Accept type {accept} is not supported by this algorithm; use one of "
        f"{', '.join(ACCEPT_TYPES)} (optionally with '; verbose=true')",
        status_code=406,
    )


def _floats(values: F32) -> list[float]:
    # str() of a float32 is its shortest round-trip form: 0.26 rather than 0.25999999046325684.
    return [float(str(value)) for value in values]


def format_response(predictions: Predictions, media: MediaType) -> bytes:
    """Serialise predictions as the container does for the chosen media type."""
    verbose = media.params.get("verbose", "").lower() == "true"
    if media.essence == recordio.CONTENT_TYPE:
        return _recordio_response(predictions, verbose)
    labels = _floats(predictions.predicted_label)
    records: list[dict[str, Any]]
    if verbose:
        neighbors = predictions.neighbors
        records = [
            {"predicted_label": label, "distances": _floats(dist), "labels": _floats(lab)}
            for label, dist, lab in zip(labels, neighbors.distances, neighbors.labels, strict=True)
        ]
    else:
        records = [{"predicted_label": label} for label in labels]
    if media.essence == "application/jsonlines":
        return "\n".join(json.dumps(record) for record in records).encode()
    return json.dumps({"predictions": records}).encode()


def _recordio_response(predictions: Predictions, verbose: bool) -> bytes:
    out = bytearray()
    for index, label in enumerate(predictions.predicted_label):
        answer = {"predicted_label": np.asarray([label])}
        if verbose:
            answer["distances"] = predictions.neighbors.distances[index]
            answer["labels"] = predictions.neighbors.labels[index]
        out += recordio.encode_record({}, answer)
    return bytes(out)


def invoke(
    model: KnnModel, body: bytes, content_type: str | None, accept: str | None
) -> tuple[bytes, str]:
    """Run one invocation: returns the response body and its ``Content-Type``.

    Raises :class:`~dropfit_local.knn.InferenceInputError` for requests the algorithm rejects.
    """
    media = choose_accept(accept)
    features = parse_request(body, content_type)
    try:
        predictions = model.predict(features)
    except InferenceInputError as exc:  # wrong feature count, NaN
        raise _unevaluable(str(exc)) from None
    return format_response(predictions, media), media.essence
