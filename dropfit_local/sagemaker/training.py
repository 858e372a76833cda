"""What a built-in k-NN training job does with its channels: read, train, score, package."""

from __future__ import annotations

import functools
import gzip
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from dropfit import recordio

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
from dropfit_local.template import load_template

CHANNELS = ("train", "test")
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# What the built-in reads: header-less CSV (label first) and recordIO-protobuf (its default).
CHANNEL_CONTENT_TYPES = ("text/csv", recordio.CONTENT_TYPE)
# An ECR image path: registry account, region, domain, repository, then a tag or a digest.
_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+)(?::[\w.-]+|@sha256:[0-9a-f]{64})?"
)
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


@functools.cache
def knn_registries() -> dict[str, str]:
    """Region -> the registry host serving the built-in k-NN image (template's KnnImage map,
    generated from the sagemaker SDK)."""
    mapping = load_template(TEMPLATE)["Mappings"]["KnnImage"]
    return {region: entry["Uri"].split("/", 1)[0] for region, entry in mapping.items()}


def image_problem(image: str, region: str) -> str | None:
    """Why SageMaker in ``region`` could not pull ``image`` for the local k-NN, or None.

    The wording is AWS's: a path that is not an ECR image is "Invalid training image"; an ECR
    path that is not the built-in k-NN of this region (another algorithm, another region's
    registry, a private repository the local stack cannot run) "Cannot find the requested image".
    """
    match = _ECR_IMAGE.fullmatch(image)
    if match is None:
        return (
            "Invalid training image. Please provide a valid Amazon Elastic Container Registry "
            "path of the Docker image to run."
        )
    registry = knn_registries().get(region)
    if match["repository"] != "knn" or registry is None or not image.startswith(registry + "/"):
        expected = f"{registry}/knn:1" if registry else "none in this region"
        return (
            f"Cannot find the requested image: {image}. The local SageMaker runs the built-in "
            f"k-NN image of {region} only ({expected})."
        )
    return None


@dataclass(frozen=True)
class Dataset:
    """Labels and features read from one channel."""

    labels: F32
    features: F32


@dataclass(frozen=True)
class ChannelSpec:
    """What a channel asks for: its name, S3 source, content type and compression."""

    name: str
    uri: str
    manifest: bool
    content_type: str
    gzipped: bool


def channel_spec(channel: Mapping[str, Any]) -> ChannelSpec:
    """The channel's settings, or the ClientError the built-in reports for ones it refuses."""
    name = channel["ChannelName"]
    if name not in CHANNELS:
        raise client_error(
            f"Channel {name!r} is not supported by the k-NN algorithm (use train and test)"
        )
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None:
        raise client_error(f"Channel {name!r} must use an S3DataSource")
    data_type = source.get("S3DataType", "S3Prefix")
    if data_type not in ("S3Prefix", "ManifestFile"):
        raise client_error(
            f"Channel {name!r}: S3DataType {data_type} is not supported locally "
            "(use S3Prefix or ManifestFile)"
        )
    # The built-in's default content type is recordIO-protobuf (what the SDK's record_set writes).
    media = MediaType.parse(channel.get("ContentType") or recordio.CONTENT_TYPE)
    if media.essence not in CHANNEL_CONTENT_TYPES:
        raise client_error(
            f"Channel {name!r}: content type {media.essence} is not supported by the k-NN "
            f"algorithm (use {' or '.join(CHANNEL_CONTENT_TYPES)})"
        )
    wrapper = channel.get("RecordWrapperType", "None")
    if media.essence == "text/csv":
        if media.params.get("label_size", "1") != "1":
            raise client_error(f"Channel {name!r}: k-NN needs label_size=1 for text/csv")
        if wrapper != "None":
            raise client_error(f"Channel {name!r}: RecordWrapperType must be None for text/csv")
    elif wrapper not in ("None", "RecordIO"):
        raise client_error(f"Channel {name!r}: RecordWrapperType {wrapper} is not supported")
    return ChannelSpec(
        name=name,
        uri=source["S3Uri"],
        manifest=data_type == "ManifestFile",
        content_type=media.essence,
        gzipped=channel.get("CompressionType", "None") == "Gzip",
    )


def channel_objects(s3: Any, spec: ChannelSpec) -> list[tuple[str, str]]:
    """The (bucket, key) of every object the channel reads: under its prefix, or its manifest's.

    Raises ``ValueError`` for a malformed URI or manifest; botocore errors pass through.
    """
    bucket, prefix = split_s3_uri(spec.uri)
    if spec.manifest:
        return _manifest_objects(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):  # "folder" placeholder objects hold no data
                objects.append((bucket, item["Key"]))
    return objects


def _manifest_objects(body: bytes) -> list[tuple[str, str]]:
    # A manifest is [{"prefix": "s3://bucket/prefix/"}, "relative/key", ...].
    try:
        document = json.loads(body)
        base = document[0]["prefix"]
        relative = document[1:]
    except (ValueError, TypeError, KeyError, IndexError):
        raise ValueError(
            'the manifest is not [{"prefix": "s3://bucket/prefix/"}, "key", ...]'
        ) from None
    if not isinstance(base, str) or not all(isinstance(key, str) for key in relative):
        raise ValueError("the manifest's prefix and keys must be strings")
    return [split_s3_uri(base + key) for key in relative]


def read_channel(s3: Any, channel: Mapping[str, Any]) -> tuple[str, Dataset]:
    """Read every object of a channel (a single instance reads all shards)."""
    spec = channel_spec(channel)
    name, uri = spec.name, spec.uri
    parts: list[tuple[F32, F32]] = []
    try:
        for bucket, key in channel_objects(s3, spec):
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            parts.append(_parse_object(data, spec, f"s3://{bucket}/{key}"))
    except ValueError as exc:
        raise client_error(f"Channel {name!r}: {exc}") from None
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


def _parse_object(data: bytes, spec: ChannelSpec, where: str) -> tuple[F32, F32]:
    try:
        raw = gzip.decompress(data) if spec.gzipped else data
    except (OSError, EOFError) as exc:
        raise client_error(f"Unable to read {where}: {exc}") from None
    if spec.content_type == recordio.CONTENT_TYPE:
        return _parse_records(raw, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise client_error(f"Unable to read {where}: {exc}") from None
    try:
        return parse_labeled_csv(text, what=where)
    except TrainingDataError as exc:
        raise client_error(str(exc)) from None


def _parse_records(raw: bytes, where: str) -> tuple[F32, F32]:
    try:
        features, labels = recordio.dense_rows(recordio.iter_records(io.BytesIO(raw)))
    except recordio.RecordIOError as exc:
        raise client_error(f"Unable to read recordIO-protobuf {where}: {exc}") from None
    if not features.size:
        return np.empty(0, np.float32), np.empty((0, 0), np.float32)
    if labels is None:
        raise client_error(f"{where}: k-NN training records need a label ('values' label tensor)")
    return labels, features


@dataclass(frozen=True)
class TrainingResult:
    """A trained model, its test scores (empty without a test channel) and what it inferred."""

    model: KnnModel
    scores: dict[str, float]
    notes: tuple[str, ...] = ()


def fit(hyperparameters: Mapping[str, str], data: Mapping[str, Dataset]) -> TrainingResult:
    """Validate hyperparameters, train on ``data["train"]``, score on ``data["test"]``.

    A missing ``feature_dim`` is the train channel's width (docs/local-stack.md says why: AWS's
    built-in trains without it although its documentation lists it as required).
    """
    notes: list[str] = []
    try:
        if "train" not in data:
            raise TrainingDataError("The train channel is required")
        if "feature_dim" not in hyperparameters:
            width = data["train"].features.shape[1]
            hyperparameters = {**hyperparameters, "feature_dim": str(width)}
            notes.append(f"feature_dim not given: {width}, the number of features in the data")
        parsed = KnnHyperparameters.parse(hyperparameters)
        model = train(parsed, data["train"].features, data["train"].labels)
        scores = {}
        if "test" in data:
            scores = model.evaluate(data["test"].features, data["test"].labels)
    except KnnError as exc:
        raise client_error(str(exc)) from None
    return TrainingResult(model=model, scores=scores, notes=tuple(notes))


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
