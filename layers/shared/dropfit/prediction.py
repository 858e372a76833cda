"""Prediction I/O: request bodies -> feature rows -> k-NN CSV; k-NN answers -> labelled predictions.

Pure Python (json, math): this is the predict function's hot path and cold start.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from dropfit.errors import (
    BadRequest,
    ModelInferenceError,
    PayloadTooLarge,
    UnprocessableRequest,
    UnsupportedMediaType,
)
from dropfit.labels import LabelMap
from dropfit.options import DECIMAL, FLOAT32_MAX
from dropfit.public import excerpt, listing

MAX_INSTANCES = 10_000
MAX_ENDPOINT_PAYLOAD = 4 * 1024 * 1024  # serverless endpoints accept at most 4 MB per request
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
_PREDICTED_LABEL = itemgetter("predicted_label")


def request_text(body: str | None, is_base64_encoded: bool | None) -> str:
    """The request body as text. API Gateway base64-encodes bodies it does not take for text;
    bytes that are not UTF-8 become U+FFFD, which no parser accepts, so they get a 4xx."""
    if is_base64_encoded and body:
        return base64.b64decode(body).decode("utf-8", errors="replace")
    return body or ""


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


class _HugeInteger(str):
    """A JSON integer of more digits than Python converts (sys.get_int_max_str_digits())."""


def _huge_integers_as_text(text: str) -> int | _HugeInteger:
    try:
        return int(text)
    except ValueError:  # over Python's limit on digits: too large for any float anyway
        return _HugeInteger(text)


def _number(value: Any, where: str) -> float:
    if isinstance(value, _HugeInteger):
        raise UnprocessableRequest(_too_large(where, value))
    # bool is an int in Python; true/false are not feature values
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnprocessableRequest(f"{where} must be a number, got {excerpt(json.dumps(value))}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnprocessableRequest(f"{where} must be a finite number, got {value!r}.")
    # an int is compared exactly, before float() (which overflows past 1e308)
    if abs(value) > FLOAT32_MAX:
        raise UnprocessableRequest(_too_large(where, value))
    return float(value)


def _too_large(where: str, value: float | str) -> str:
    """The refusal of a number beyond float32; a CSV cell (a str) is quoted as it was sent."""
    shown = value if isinstance(value, str) else repr(value)
    if len(shown) > 24:  # an integer or decimal of hundreds of digits: say how many
        shown = f"{shown[:12]}… ({len(shown):,} characters)"
    if isinstance(value, str) and not isinstance(value, _HugeInteger):
        shown = f"'{shown}'"
    return (
        f"{where} = {shown} is too large: the k-NN model computes in 32-bit floats "
        "(at most about 3.4e38 in magnitude)."
    )


_NUMBER_TYPES = frozenset({float, int})  # not bool: true/false are not feature values


def _plain_rows(instances: list[Any], n: int) -> list[list[float]] | None:
    """The rows, when every instance is a list of n finite numbers (the usual request), else None.

    Checks whole requests with C-level loops (a 1,000-row request in a fraction of the time
    the value-by-value checks take); None sends the caller to those, which say what is wrong.
    """
    if not instances:
        return []
    if set(map(type, instances)) != {list} or set(map(len, instances)) != {n}:
        return None
    types = set(map(type, chain.from_iterable(instances)))
    if not _NUMBER_TYPES.issuperset(types):
        return None
    try:
        # JSON's 3.0 is a float already; only integers need converting
        rows = instances if types == {float} else [list(map(float, row)) for row in instances]
        # fsum is exact: infinite or NaN if and only if some value is (or the sum overflows,
        # which the careful path then clears)
        if not math.isfinite(math.fsum(chain.from_iterable(rows))):
            return None
        if max(map(abs, chain.from_iterable(rows))) > FLOAT32_MAX:
            return None
    except OverflowError:  # an integer too large for a float
        return None
    return rows


def _reject_constant(name: str) -> float:
    raise UnprocessableRequest(f"{name} is not a finite number; send finite feature values.")


class Cells:
    """How a run with a fitted transform reads each feature: a number or a category (text), and
    whether a missing value (JSON null, an empty CSV cell) may be filled in."""

    def __init__(self, categorical: Sequence[bool], fillable: Sequence[bool]) -> None:
        self.categorical = list(categorical)
        self.fillable = list(fillable)

    def value(self, j: int, value: Any, where: str) -> float | str | None:
        if value is None or value == "":
            if not self.fillable[j]:
                raise UnprocessableRequest(
                    f"{where} is missing; this model fills in no missing value there, send it."
                )
            return None
        if not self.categorical[j]:
            return _number(value, where)
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UnprocessableRequest(f"{where} must be a category (text), got {value!r:.40}.")
        return str(value) if isinstance(value, int) else repr(value)

    def cell(self, j: int, cell: str, where: str) -> float | str | None:
        """A CSV cell (stripped, unquoted)."""
        if self.categorical[j] or not cell:
            return self.value(j, cell, where)
        return _decimal(cell, where)


Row = list[Any]  # numbers; with Cells: numbers, categories and None (missing)


def parse_instances(
    body: str, content_type: str | None, features: Sequence[str], cells: Cells | None = None
) -> list[Row]:
    """Feature rows in training order, from JSON ``{"instances": [...]}`` or a CSV body.

    A JSON instance is either a list of values in training order or an object keyed by feature
    name. A CSV body may start with a header row naming the features (any order). With
    ``cells`` (a run that transforms its features), values are read as it says.
    """
    media = _media_type(content_type)
    # A byte-order mark is not part of the text (uploads accept one too); RFC 8259 lets JSON
    # parsers ignore it, and Python's does for bytes.
    body = body.removeprefix("\ufeff")
    if media in JSON_TYPES:
        rows = _parse_json(body, features, cells)
    elif media in CSV_TYPES:
        rows = _parse_csv(body, features, cells)
    else:
        raise UnsupportedMediaType(
            f"Content type {media!r} is not supported; send application/json or text/csv."
        )
    if not rows:
        raise UnprocessableRequest("No instances to predict; send at least one.")
    if len(rows) > MAX_INSTANCES:
        raise PayloadTooLarge(
            f"{len(rows)} instances in one request; at most {MAX_INSTANCES} are accepted."
        )
    return rows


def _load_json(body: str) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as error:
        if isinstance(error, json.JSONDecodeError):
            raise
        # Valid JSON, but an integer of more digits than Python converts: keep such integers
        # as text (the slower hook only on this rare path) so that the value can be named.
        return json.loads(body, parse_constant=_reject_constant, parse_int=_huge_integers_as_text)


def _parse_json(body: str, features: Sequence[str], cells: Cells | None) -> list[Row]:
    try:
        document = _load_json(body)
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply.") from None
    except ValueError as error:
        raise BadRequest(f"The body is not valid JSON: {error}.") from None
    if not isinstance(document, dict) or "instances" not in document:
        raise BadRequest('The body must be a JSON object {"instances": [...]}.')
    instances = document["instances"]
    if not isinstance(instances, list):
        raise BadRequest('"instances" must be a list of instances.')
    if len(instances) > MAX_INSTANCES:
        raise PayloadTooLarge(
            f"{len(instances)} instances in one request; at most {MAX_INSTANCES} are accepted."
        )
    n = len(features)
    plain = _plain_rows(instances, n) if cells is None or not any(cells.categorical) else None
    if plain is not None:
        return plain
    # Something is off (or not all numbers): value by value, naming the first offending one.
    read = cells.value if cells is not None else (lambda _, v, where: _number(v, where))
    rows: list[Row] = []
    for i, instance in enumerate(instances):
        if isinstance(instance, list):
            if len(instance) != n:
                raise UnprocessableRequest(
                    f"instances[{i}] has {len(instance)} values; the model expects {n}: "
                    f"{listing(features)}."
                )
            rows.append([read(j, v, f"instances[{i}][{j}]") for j, v in enumerate(instance)])
        elif isinstance(instance, dict):
            missing = [name for name in features if name not in instance]
            unknown = [name for name in instance if name not in features]
            if missing or unknown:
                parts = []
                if missing:
                    parts.append(f"missing {listing(missing)}")
                if unknown:
                    parts.append(f"unknown {listing(unknown)}")
                raise UnprocessableRequest(
                    f"instances[{i}] has {'; '.join(parts)}; the features are {listing(features)}."
                )
            rows.append(
                [read(j, instance[f], f"instances[{i}].{f}") for j, f in enumerate(features)]
            )
        else:
            raise UnprocessableRequest(
                f"instances[{i}] must be a list of {n} numbers or an object keyed by feature name."
            )
    return rows


def _decimal(cell: str, where: str) -> float:
    """A CSV cell that must be a finite decimal number within float32."""
    if not DECIMAL.fullmatch(cell):
        raise UnprocessableRequest(f"{where}: {excerpt(cell)!r} is not a finite decimal number.")
    value = float(cell)
    if not math.isfinite(value):  # e.g. 1e999
        raise UnprocessableRequest(f"{where} must be a finite number.")
    if abs(value) > FLOAT32_MAX:
        raise UnprocessableRequest(_too_large(where, cell))
    return value


def _parse_csv(body: str, features: Sequence[str], cells: Cells | None) -> list[Row]:
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if not lines:
        return []
    order = list(range(len(features)))
    header = [cell.strip().strip('"') for cell in lines[0].split(",")]
    if _is_header(header, features):
        order = [header.index(name) for name in features]
        lines = lines[1:]
    rows: list[Row] = []
    for i, line in enumerate(lines, start=1):
        fields = line.split(",")
        if len(fields) != len(features):
            raise UnprocessableRequest(
                f"CSV row {i} has {len(fields)} values; the model expects {len(features)}: "
                f"{listing(features)}."
            )
        row: Row = []
        # the feature `name` sits in cell j of the body (a header may reorder them)
        for k, (name, j) in enumerate(zip(features, order, strict=True)):
            cell = fields[j].strip()
            if len(cell) >= 2 and cell[0] == cell[-1] == '"':
                cell = cell[1:-1].strip()
            where = f"CSV row {i}, column {excerpt(name)!r}"
            row.append(_decimal(cell, where) if cells is None else cells.cell(k, cell, where))
        rows.append(row)
    return rows


def _is_header(cells: list[str], features: Sequence[str]) -> bool:
    """Whether a CSV body's first row names the features (in any order) rather than holding data.

    Feature names may be numbers (pandas writes ``0,1,...`` for unnamed columns): a row of
    numbers is data unless it is the feature names exactly, in training order.
    """
    if len(cells) != len(features) or set(cells) != set(features):
        return False
    return cells == list(features) or not all(map(DECIMAL.fullmatch, cells))


def to_endpoint_csv(
    rows: Sequence[Sequence[float]], number: Callable[[float], str] = repr
) -> bytes:
    """The k-NN text/csv request: one row per instance, no label; repr keeps every digit
    (transformed rows: ``number`` writes them as the channels hold them)."""
    payload = "\n".join(",".join(map(number, row)) for row in rows).encode()
    if len(payload) > MAX_ENDPOINT_PAYLOAD:
        raise PayloadTooLarge(
            f"The instances make a {len(payload)} byte request; the endpoint accepts at most "
            f"{MAX_ENDPOINT_PAYLOAD} bytes. Split them into smaller requests."
        )
    return payload


def _distance(value: Any) -> float | None:
    # float32 squared distances overflow for values beyond ~1e19: JSON has no Infinity, so null
    distance = float(value)
    return distance if math.isfinite(distance) else None


def parse_endpoint_answer(
    body: bytes, expected: int, label_map: LabelMap | None, verbose: bool
) -> list[dict[str, Any]]:
    """k-NN JSON answers (verbose or not) -> the API's predictions, with class names (or numbers).

    Built as the response's dicts at once: a 1,000-row answer is on the hot path.
    """
    answers = json.loads(body)["predictions"]
    if len(answers) != expected:
        raise ValueError(f"the endpoint returned {len(answers)} predictions for {expected} rows")
    values = list(map(float, map(_PREDICTED_LABEL, answers)))
    if label_map is not None:
        labels: Sequence[str | float] = label_map.decode_many(values)
    elif all(map(math.isfinite, values)):
        labels = values
    else:
        raise ModelInferenceError(
            "The model answered a non-finite prediction: its neighbours' labels overflow "
            "32-bit floats."
        )
    if not verbose:
        return [{"label": label} for label in labels]
    name = label_map.decode if label_map is not None else float
    return [
        {
            "label": label,
            "neighbors": [
                {"label": name(float(neighbor)), "distance": _distance(distance)}
                for neighbor, distance in zip(
                    answer.get("labels", []), answer.get("distances", []), strict=True
                )
            ],
        }
        for label, answer in zip(labels, answers, strict=True)
    ]
