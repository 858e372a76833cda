"""Typed settings, parsed once from the environment that template.yaml sets.

Each function has its own settings class listing exactly the variables it reads; a template test
checks that every one of them is set on that function, so code and template cannot drift.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Self

from dropfit.errors import InvalidUpload
from dropfit.options import Defaults


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed: a deployment bug, not bad input."""


def _env_name(field_name: str) -> str:
    return field_name.upper()


@dataclass(frozen=True, slots=True)
class _Settings:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = _env_name(field.name)
            raw = env.get(name)
            if raw is None or raw == "":
                raise SettingsError(f"environment variable {name} is not set")
            if field.type in ("bool", bool):
                if raw not in ("true", "false"):
                    raise SettingsError(f"{name} must be true or false, got {raw!r}")
                values[field.name] = raw == "true"
            elif field.type in ("int", int):
                try:
                    values[field.name] = int(raw)
                except ValueError as exc:
                    raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
            else:
                values[field.name] = raw
        return cls(**values)

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variables this settings class reads."""
        return [_env_name(f.name) for f in fields(cls)]


@dataclass(frozen=True, slots=True)
class FormatSettings(_Settings):
    table_name: str
    bucket_name: str
    name_prefix: str
    incoming_prefix: str
    datasets_prefix: str
    artifacts_prefix: str
    knn_image_uri: str
    sagemaker_role_arn: str
    training_instance_type: str
    training_instance_count: int
    max_training_seconds: int
    default_k: str  # a number or "auto"
    default_scale: str
    default_encode: str
    default_missing: str
    default_min_score: str  # a score, or "none"
    failure_topic_arn: str
    async_attempts: int  # 1 + the function's EventInvokeConfig.MaximumRetryAttempts
    # Uploads larger than this go to a SageMaker Processing job (dropfit.processing).
    processing_threshold_mb: int
    processing_image_uri: str  # the region's scikit-learn processing image
    processing_role_arn: str
    processing_instance_type: str
    processing_instance_count: int
    processing_prefix: str  # processing/: the jobs' code and options

    def goes_to_processing(self, size: int | None) -> bool:
        """Whether an upload of ``size`` bytes is formatted by a Processing job."""
        return size is not None and size > self.processing_threshold_mb * 1024 * 1024

    def default_texts(self) -> dict[str, str]:
        """The stack's option defaults as the template gives them (Defaults.parse's arguments)."""
        return {
            "k": self.default_k,
            "scale": self.default_scale,
            "encode": self.default_encode,
            "missing": self.default_missing,
            "min_score": self.default_min_score,
        }

    def defaults(self) -> Defaults:
        """The stack's option defaults, validated as an upload's options are."""
        try:
            return Defaults.parse(**self.default_texts())
        except InvalidUpload as error:
            raise SettingsError(f"a stack default is invalid: {error.message}") from None


@dataclass(frozen=True, slots=True)
class DeploySettings(_Settings):
    table_name: str
    name_prefix: str
    knn_image_uri: str
    sagemaker_role_arn: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    failure_topic_arn: str
    keep_runs: int  # endpoint configs and models kept per model, for rollback
    # The quality gate: how much worse than the serving run's a new run's score may be ("none":
    # any score replaces it).
    replace_margin: str
    async_attempts: int  # 1 + the function's EventInvokeConfig.MaximumRetryAttempts

    def margin(self) -> float | None:
        if self.replace_margin.strip().lower() == "none":
            return None
        try:
            value = float(self.replace_margin)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= 2):
            raise SettingsError(
                f"REPLACE_MARGIN must be none or a score difference 0..2, got "
                f"{self.replace_margin!r}"
            )
        return value


@dataclass(frozen=True, slots=True)
class ManageSettings(_Settings):
    table_name: str
    name_prefix: str


@dataclass(frozen=True, slots=True)
class PredictSettings(_Settings):
    table_name: str
    name_prefix: str
    bucket_name: str
    datasets_prefix: str
    allow_neighbors: bool


@dataclass(frozen=True, slots=True)
class ReportSettings(_Settings):
    table_name: str
    bucket_name: str
    name_prefix: str
    datasets_prefix: str
    reports_prefix: str
