"""Fixtures for the local SageMaker: a moto server, the local SageMaker, boto3 clients, iris."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer
from sklearn.model_selection import train_test_split

from dropfit_local import knn
from dropfit_local.sagemaker import LocalSageMaker

DATA = Path(__file__).resolve().parents[1] / "data"
REGION = "us-east-1"
ACCOUNT = "123456789012"
KNN_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dropfit-sagemaker"
BUCKET = "dropfit-local-tests"
SPECIES = {"setosa": 0, "versicolor": 1, "virginica": 2}


@dataclass(frozen=True)
class Iris:
    """The tutorial split: 112 train rows, 38 test rows, label (species code) first."""

    train_csv: str
    test_csv: str
    train_labels: np.ndarray
    train_features: np.ndarray
    test_labels: np.ndarray
    test_features: np.ndarray


@pytest.fixture(scope="session")
def iris() -> Iris:
    frame = pd.read_csv(DATA / "iris.csv")
    frame = frame[["Species", *[c for c in frame.columns if c != "Species"]]]
    frame["Species"] = frame["Species"].map(SPECIES)
    train, test = train_test_split(frame, random_state=0)
    train_csv = train.to_csv(header=False, index=False)
    test_csv = test.to_csv(header=False, index=False)
    train_labels, train_features = knn.parse_labeled_csv(train_csv)
    test_labels, test_features = knn.parse_labeled_csv(test_csv)
    return Iris(train_csv, test_csv, train_labels, train_features, test_labels, test_features)


def hyperparameters(**overrides: str) -> dict[str, str]:
    """The tutorial's hyperparameters (k=1 classifier on 4 features), with overrides."""
    return {
        "feature_dim": "4",
        "k": "1",
        "predictor_type": "classifier",
        "sample_size": "200",
    } | overrides


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Aws:
    """boto3 clients of the test: SageMaker through the env-var endpoints, the rest on moto."""

    s3: Any
    sqs: Any
    sagemaker: Any
    runtime: Any
    queue_url: str
    logs: list[str]
    received: list[dict[str, Any]]

    def events(self, resource_arn: str, minimum: int = 1, timeout: float = 5.0) -> list[dict]:
        """Events about ``resource_arn`` received so far (waits for at least ``minimum``)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            found = [event for event in self.received if resource_arn in event["resources"]]
            if len(found) >= minimum or time.monotonic() > deadline:
                return found
            if not messages:
                time.sleep(0.05)


@pytest.fixture(scope="module")
def faults_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local SageMaker's faults folder (dropfit_local.faults): empty unless a test injects."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def local_sagemaker(moto_url: str, faults_dir: Path) -> Iterator[tuple[LocalSageMaker, list[str]]]:
    logs: list[str] = []
    server = LocalSageMaker(
        region=REGION,
        account_id=ACCOUNT,
        s3_endpoint_url=moto_url,
        events_endpoint_url=moto_url,
        logs_endpoint_url=moto_url,
        endpoint_delay_seconds=0.3,
        log=logs.append,
        faults_dir=faults_dir,
    )
    server.start()
    yield server, logs
    server.stop()


@pytest.fixture(scope="module")
def aws(local_sagemaker: tuple[LocalSageMaker, list[str]], moto_url: str) -> Iterator[Aws]:
    server, logs = local_sagemaker
    with pytest.MonkeyPatch.context() as env:
        # Unmodified boto3 finds the local SageMaker the way the Lambdas will: env vars.
        env.setenv("AWS_ENDPOINT_URL_SAGEMAKER", server.url)
        env.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
        session = boto3.session.Session(region_name=REGION)
        sagemaker = session.client("sagemaker")
        runtime = session.client("sagemaker-runtime")
    s3 = session.client("s3", endpoint_url=moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    events = session.client("events", endpoint_url=moto_url)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    queue_name = f"sagemaker-events-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name=queue_name, EventPattern=json.dumps({"source": ["aws.sagemaker"]}))
    events.put_targets(Rule=queue_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield Aws(s3, sqs, sagemaker, runtime, queue_url, logs, [])
    events.remove_targets(Rule=queue_name, Ids=["queue"])
    events.delete_rule(Name=queue_name)


def wait_for(read: Callable[[], dict[str, Any]], key: str, busy: tuple[str, ...]) -> dict:
    """Poll a Describe call until ``key`` leaves the ``busy`` states (10 s at most)."""
    deadline = time.monotonic() + 10
    while (described := read())[key] in busy:
        assert time.monotonic() < deadline, f"still {described[key]}"
        time.sleep(0.02)
    return described
