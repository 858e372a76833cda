"""What a built-in k-NN training job does with its channels: read, train, score, package."""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from dropfit_local.knn import (
    F32,
    KnnError,
    KnnHyperparameters,
    KnnModel,
    TrainingDataError,
    parse_labeled_csv,
    train,
)
from dropfit_local.sagemaker.inference import MediaType

CHANNELS = ("train", "test")
KNN_IMAGE = re.compile(r"(^|/)knn([:@]|$)")
# The built-in's metric definitions: FinalMetricDataList holds what these regexes find in the log.
METRIC_DEFINITIONS = (
    {"Name": "test:accuracy", "Regex": r"#quality_metric: host=\S+, test accuracy <score>=(\S+)"},
    {"Name": "test:mse", "Regex": r"#quality_metric: host=\S+, test mse <score>=(\S+)"},
)


class TrainingFailure(Exception):
    """Ends a job as Failed; the message is the FailureReason (``ClientError: ...``)."""


def client_error(detail: str) -> TrainingFailure:
    """A failure caused by the job's inputs, worded like the built-in's ``ClientError``."""
    return TrainingFailure(f"ClientError: {detail}")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket")
    return bucket, key


def check_image(image: str) -> None:
    """Only the built-in k-NN image can run here; anything else fails like a bad image."""
    repository = image.rsplit("/", 1)[-1]
    if not KNN_IMAGE.search(repository):
        raise client_error(
            f"The local SageMaker runs the built-in k-NN algorithm only; image {image!r} "
            "is not a k-NN image (expected a repository named knn)"
        )


@dataclass(frozen=True)
class Dataset:
    """Labels and features read from one channel."""

    labels: F32
    features: F32


def _channel_spec(channel: Mapping[str, Any]) -> tuple[str, str, bool]:
    name = channel["ChannelName"]
    if name not in CHANNELS:
        raise client_error(
            f"Channel {name!r} is not supported by the k-NN algorithm (use train and test)"
        )
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None:
        raise client_error(f"Channel {name!r} must use an S3DataSource")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise client_error(
            f"Channel {name!r}: S3DataType {source['S3DataType']} is not supported locally "
            "(use S3Prefix)"
        )
    # The built-in's default content type is recordIO-protobuf, which this engine cannot read.
    media = MediaType.parse(channel.get("ContentType") or "application/x-recordio-protobuf")
    if media.essence != "text/csv":
        raise client_error(
            f"Channel {name!r}: content type {media.essence} is not supported locally "
            "(use text/csv)"
        )
    if media.params.get("label_size", "1") != "1":
        raise client_error(f"Channel {name!r}: k-NN needs label_size=1 for text/csv")
    if channel.get("RecordWrapperType", "None") != "None":
        raise client_error(f"Channel {name!r}: RecordWrapperType must be None for text/csv")
    return name, source["S3Uri"], channel.get("CompressionType", "None") == "Gzip"


def read_channel(s3: Any, channel: Mapping[str, Any]) -> tuple[str, Dataset]:
    """Read every object under a channel's S3 prefix (a single instance reads all shards)."""
    name, uri, gzipped = _channel_spec(channel)
    try:
        bucket, prefix = split_s3_uri(uri)
    except ValueError as exc:
        raise client_error(f"Channel {name!r}: {exc}") from None
    parts: list[tuple[F32, F32]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # "folder" placeholder objects
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                parts.append(_parse_object(data, gzipped, f"s3://{bucket}/{key}"))
    except (ClientError, BotoCoreError) as exc:
        raise client_error(f"Data download failed: channel {name!r} ({uri}): {exc}") from None
    parts = [part for part in parts if part[0].size]
    if not parts:
        raise client_error(f"Channel {name!r} has no data: no records under {uri}")
    widths = {features.shape[1] for _, features in parts}
    if len(widths) > 1:
        raise client_error(
            f"Channel {name!r}: the objects under {uri} have different numbers of columns"
        )
    labels = np.concatenate([labels for labels, _ in parts])
    features = np.concatenate([features for _, features in parts])
    return name, Dataset(labels=labels, features=features)


def _parse_object(data: bytes, gzipped: bool, where: str) -> tuple[F32, F32]:
    try:
        text = (gzip.decompress(data) if gzipped else data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise client_error(f"Unable to read {where}: {exc}") from None
    try:
        return parse_labeled_csv(text, what=where)
    except TrainingDataError as exc:
        raise client_error(str(exc)) from None


@dataclass(frozen=True)
class TrainingResult:
    """A trained model and its test scores (empty without a test channel)."""

    model: KnnModel
    scores: dict[str, float]


def fit(hyperparameters: Mapping[str, str], data: Mapping[str, Dataset]) -> TrainingResult:
    """Validate hyperparameters, train on ``data["train"]``, score on ``data["test"]``."""
    try:
        parsed = KnnHyperparameters.parse(hyperparameters)
        if "train" not in data:
            raise TrainingDataError("The train channel is required")
        model = train(parsed, data["train"].features, data["train"].labels)
        scores = {}
        if "test" in data:
            scores = model.evaluate(data["test"].features, data["test"].labels)
    except KnnError as exc:
        raise client_error(str(exc)) from None
    return TrainingResult(model=model, scores=scores)


def score_lines(scores: Mapping[str, float]) -> list[str]:
    """The log lines the built-in prints for its test scores."""
    lines = [f"#test_score (algo-1) : ({name!r}, {value!r})" for name, value in scores.items()]
    lines += [
        f"#quality_metric: host=algo-1, test {name} <score>={value!r}"
        for name, value in scores.items()
        if name in ("accuracy", "mse")
    ]
    return lines


def final_metrics(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """(MetricName, value) pairs of FinalMetricDataList, per the metric definitions."""
    return [
        (f"test:{name}", value) for name, value in scores.items() if name in ("accuracy", "mse")
    ]
