"""Per-upload options, given as S3 object metadata (``aws s3 cp --metadata label=Species,k=3``).

S3 returns user metadata keys in lower case; ``-`` and ``_`` are interchangeable here. Options the
pipeline owns are validated strictly before any money is spent. Keys starting with ``hp-`` are
passed to the k-NN algorithm as raw hyperparameters (for experts: e.g. ``hp-index_metric=COSINE``);
those the algorithm itself validates, and a bad one fails the training job with its reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from dropfit.errors import InvalidModelName, InvalidUpload
from dropfit.names import check_model_name

PREDICTOR_TYPES = ("classifier", "regressor")
K_MAX = 1024  # the built-in k-NN's documented maximum
# The built-in k-NN computes in float32: beyond this a value becomes infinite and the job fails.
FLOAT32_MAX = 3.4028234663852886e38
# A number written as a plain decimal: no '1_000', 'inf', 'nan' or non-ASCII digits, all of which
# float() takes. The formatter keeps such text as uploaded; predict's CSV bodies hold only these.
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
HYPERPARAMETER_PREFIX = "hp-"
# Set by Dropfit itself from the data; an hp- override would make the job disagree with the data.
RESERVED_HYPERPARAMETERS = frozenset({"feature_dim", "k", "predictor_type", "sample_size"})
# CreateTrainingJob's HyperParameters map holds at most 100 entries.
MAX_HYPERPARAMETERS = 100
MAX_EXTRA_HYPERPARAMETERS = MAX_HYPERPARAMETERS - len(RESERVED_HYPERPARAMETERS)
_HYPERPARAMETER_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
KNOWN_OPTIONS = (
    "name",
    "label",
    "k",
    "predictor_type",
    "test_fraction",
    "sample_size",
    "scale",
    "encode",
    "missing",
    "min_score",
    "force",
)
NAME_OPTION = "name"
AUTO = "auto"
# Preprocessing choices; the first of each is the tutorial's (nothing changes the data).
SCALES = ("none", "standard", "minmax", AUTO)
ENCODINGS = ("refuse", "onehot")
MISSING = ("refuse", "drop", "median")
_BOOLEANS = {"true": True, "false": False}

KChoice = int | Literal["auto"]


@dataclass(frozen=True, slots=True)
class Defaults:
    """The stack's defaults for options an upload does not set (template parameters)."""

    k: KChoice = 1
    scale: str = "none"
    encode: str = "refuse"
    missing: str = "refuse"
    min_score: float | None = None

    @classmethod
    def parse(
        cls, k: str, scale: str, encode: str, missing: str, min_score: str = "none"
    ) -> Defaults:
        """From the template's parameters (as text), validated as an upload's options are."""
        return cls(
            k=_k_option(k),
            scale=_choice("scale", scale, SCALES),
            encode=_choice("encode", encode, ENCODINGS),
            missing=_choice("missing", missing, MISSING),
            min_score=None if min_score.strip().lower() == "none" else _score(min_score),
        )


@dataclass(frozen=True, slots=True)
class UploadOptions:
    name: str | None = None  # the model's name, instead of the one the key gives
    label: str | None = None
    k: KChoice | None = None  # None: the stack's default k
    predictor_type: str | None = None
    test_fraction: float = 0.25
    sample_size: int | None = None
    extra_hyperparameters: dict[str, str] = field(default_factory=dict)
    scale: str = "none"
    encode: str = "refuse"
    missing: str = "refuse"
    min_score: float | None = None  # the quality gate's floor (None: the stack's, if any)
    force: bool = False  # replace the serving model even if this one scores worse

    @property
    def transforms(self) -> bool:
        """Whether the features are transformed (else the channels keep the upload's text)."""
        return (self.scale, self.encode, self.missing) != ("none", "refuse", "refuse")

    def as_record(self) -> dict[str, object]:
        """What is stored with the run (only what the user set, plus defaults that matter)."""
        record: dict[str, object] = {"test_fraction": str(self.test_fraction)}
        for name in ("name", "label", "k", "predictor_type", "sample_size", "min_score"):
            value = getattr(self, name)
            if value is not None:
                record[name] = str(value)
        for name, tutorial in (("scale", "none"), ("encode", "refuse"), ("missing", "refuse")):
            if getattr(self, name) != tutorial:
                record[name] = getattr(self, name)
        if self.force:
            record["force"] = "true"
        if self.extra_hyperparameters:
            record["hyperparameters"] = dict(self.extra_hyperparameters)
        return record


def _int_option(name: str, raw: str, low: int, high: int, alternative: str = "") -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidUpload(
            f"Option {name}={raw!r} is not a whole number; expected {low}..{high}{alternative}."
        ) from None
    if not low <= value <= high:
        raise InvalidUpload(
            f"Option {name}={value} is out of range; expected {low}..{high}{alternative}."
        )
    return value


def _option_key(raw_key: str) -> str:
    return raw_key.strip().lower().replace("-", "_")


def _model_name_option(raw: str) -> str:
    try:
        return check_model_name(raw.strip())
    except InvalidModelName as error:
        raise InvalidModelName(
            f"Option {NAME_OPTION}: {error.message} For example {NAME_OPTION}=iris-2."
        ) from None


def _unambiguous(metadata: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Options by their folded key (case, ``-``/``_``): (key as given, value).

    Two keys that fold to one (``predictor-type`` and ``predictor_type``, ``K`` and ``k``) are
    refused: which one was meant cannot be known, and taking either would train a model the
    user may not have asked for.
    """
    folded: dict[str, tuple[str, str]] = {}
    for raw_key, raw_value in metadata.items():
        key = _option_key(raw_key)
        if key in folded:
            first = folded[key][0]
            raise InvalidUpload(
                f"Options {first!r} and {raw_key!r} are the same option (case and - or _ do not "
                "matter); give it once."
            )
        folded[key] = (raw_key, raw_value)
    return folded


def requested_model_name(metadata: Mapping[str, str]) -> str | None:
    """The ``name`` option alone, validated: read before the upload has a model to run under."""
    named = {k: v for k, v in metadata.items() if _option_key(k) == NAME_OPTION}
    chosen = _unambiguous(named).get(NAME_OPTION)
    return _model_name_option(chosen[1]) if chosen else None


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in allowed:
        raise InvalidUpload(
            f"Option {name}={raw!r} is not supported; expected one of {', '.join(allowed)}."
        )
    return value


def _k_option(raw: str) -> KChoice:
    if raw.strip().lower() == AUTO:
        return "auto"
    return _int_option("k", raw, 1, K_MAX, " or auto")


def _score(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise InvalidUpload(
            f"Option min_score={raw!r} is not a score; expected a number from -1 to 1 (the test "
            "accuracy of a classifier, the test R² of a regressor), e.g. 0.9."
        )
    return value


def parse_options(metadata: Mapping[str, str], defaults: Defaults = Defaults()) -> UploadOptions:
    """S3 user metadata -> validated options; unknown keys are errors (typos cost money).

    Options the upload does not set take the stack's ``defaults`` (k stays None: its default is
    resolved with the data).
    """
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    for raw_key, raw_value in _unambiguous(metadata).values():
        key = raw_key.strip().lower()
        if key.startswith(HYPERPARAMETER_PREFIX):
            name = key[len(HYPERPARAMETER_PREFIX) :].replace("-", "_")
            if not _HYPERPARAMETER_NAME.match(name):
                raise InvalidUpload(f"Hyperparameter option {raw_key!r} has an invalid name.")
            if name in RESERVED_HYPERPARAMETERS:
                raise InvalidUpload(
                    f"Hyperparameter {name} is set by Dropfit from the data and the options "
                    f"(k, predictor_type, sample_size); use those instead of {raw_key!r}."
                )
            if not raw_value or len(raw_value) > 256:
                raise InvalidUpload(f"Hyperparameter {name} needs a value of 1 to 256 characters.")
            extra[name] = raw_value
            if len(extra) > MAX_EXTRA_HYPERPARAMETERS:
                raise InvalidUpload(
                    f"More than {MAX_EXTRA_HYPERPARAMETERS} {HYPERPARAMETER_PREFIX} options: "
                    f"SageMaker takes at most {MAX_HYPERPARAMETERS} hyperparameters, and Dropfit "
                    f"sets {len(RESERVED_HYPERPARAMETERS)} of them "
                    f"({', '.join(sorted(RESERVED_HYPERPARAMETERS))})."
                )
            continue
        key = _option_key(key)
        if key not in KNOWN_OPTIONS:
            raise InvalidUpload(
                f"Unknown option {raw_key!r}; known options are {', '.join(KNOWN_OPTIONS)} "
                f"and {HYPERPARAMETER_PREFIX}<hyperparameter>."
            )
        values[key] = raw_value

    label = values.get("label")
    if label is not None and not label.strip():
        raise InvalidUpload("Option label is empty; give the name of the label column.")

    predictor_type = values.get("predictor_type")
    if predictor_type is not None:
        predictor_type = predictor_type.strip().lower()
        if predictor_type not in PREDICTOR_TYPES:
            raise InvalidUpload(
                f"Option predictor_type={values['predictor_type']!r} is not supported; "
                f"expected one of {', '.join(PREDICTOR_TYPES)}."
            )

    test_fraction = 0.25
    if "test_fraction" in values:
        raw = values["test_fraction"]
        try:
            test_fraction = float(raw)
        except ValueError:
            raise InvalidUpload(
                f"Option test_fraction={raw!r} is not a number; expected a value between 0 and 1 "
                "(exclusive), e.g. 0.25."
            ) from None
        if not (math.isfinite(test_fraction) and 0.0 < test_fraction < 1.0):
            raise InvalidUpload(
                f"Option test_fraction={raw} is out of range; expected a value strictly between "
                "0 and 1, e.g. 0.25."
            )

    force = False
    if "force" in values:
        raw = values["force"].strip().lower()
        if raw not in _BOOLEANS:
            raise InvalidUpload(f"Option force={values['force']!r} is not true or false.")
        force = _BOOLEANS[raw]

    return UploadOptions(
        name=_model_name_option(values[NAME_OPTION]) if NAME_OPTION in values else None,
        label=label.strip() if label is not None else None,
        k=_k_option(values["k"]) if "k" in values else None,
        predictor_type=predictor_type,
        test_fraction=test_fraction,
        sample_size=(
            _int_option("sample_size", values["sample_size"], 1, 2**31 - 1)
            if "sample_size" in values
            else None
        ),
        extra_hyperparameters=extra,
        scale=_choice("scale", values["scale"], SCALES) if "scale" in values else defaults.scale,
        encode=(
            _choice("encode", values["encode"], ENCODINGS)
            if "encode" in values
            else defaults.encode
        ),
        missing=(
            _choice("missing", values["missing"], MISSING)
            if "missing" in values
            else defaults.missing
        ),
        min_score=_score(values["min_score"]) if "min_score" in values else defaults.min_score,
        force=force,
    )
