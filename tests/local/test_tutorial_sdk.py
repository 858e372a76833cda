"""The seed tutorial's own sagemaker SDK v2 code against the local SageMaker (the SDK's venv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dropfit_local.sagemaker import LocalSageMaker
from tests.sdk.venv import run_sdk

from .conftest import BUCKET, REGION, ROLE, Aws, Iris

# The tutorial's calls, in its order: an Estimator on the k-NN image with no feature_dim
# (get_estimator(k=1, sample_size=1000)), Pipe-mode CSV channels, fit with logs, deploy on
# ml.t2.medium with CSV in and JSON out, predict the test rows, delete the model and endpoint.
# The SDK sleeps 10 to 30 s between polls; the local SageMaker answers in well under a second,
# so the script shortens every sleep to 0.2 s (the calls and their order are the SDK's own).
TUTORIAL = r"""
import json, sys, time

_sleep = time.sleep
time.sleep = lambda seconds: _sleep(min(seconds, 0.2))

import boto3
import numpy as np
import sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import CSVSerializer

region, role, bucket, prefix = sys.argv[1:5]
test_features = np.array(json.loads(sys.argv[5]))
session = sagemaker.Session(boto3.Session(region_name=region))


def get_estimator(k, sample_size):
    estimator = Estimator(
        sagemaker.image_uris.retrieve("knn", region),
        role,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/{prefix}/output",
        sagemaker_session=session,
    )
    estimator.set_hyperparameters(k=k, sample_size=sample_size, predictor_type="classifier")
    return estimator


estimator = get_estimator(k=1, sample_size=1000)
channels = {
    name: TrainingInput(
        f"s3://{bucket}/{prefix}/{name}/", content_type="text/csv", input_mode="Pipe"
    )
    for name in ("train", "test")
}
estimator.fit(channels, logs=True)
predictor = estimator.deploy(
    initial_instance_count=1,
    instance_type="ml.t2.medium",
    serializer=CSVSerializer(),
    deserializer=JSONDeserializer(),
)
result = predictor.predict(test_features)
print("PREDICTIONS " + json.dumps(result))
predictor.delete_model()
predictor.delete_endpoint()
print("ENDPOINT " + predictor.endpoint_name)
"""


def test_the_tutorials_sdk_code_trains_prints_its_log_and_predicts_37_of_38(
    sdk_venv: Path,
    aws: Aws,
    iris: Iris,
    moto_url: str,
    local_sagemaker: tuple[LocalSageMaker, list[str]],
) -> None:
    sagemaker_url = local_sagemaker[0].url
    prefix = "tutorial-sdk"
    aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/iris.csv", Body=iris.train_csv.encode())
    aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/test/iris.csv", Body=iris.test_csv.encode())
    # Only the endpoint variables, as a user points the SDK at the local stack.
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
    }

    done = run_sdk(
        TUTORIAL,
        REGION,
        ROLE,
        BUCKET,
        prefix,
        json.dumps(iris.test_features.tolist()),
        env=env,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = done.stdout
    assert "#test_score (algo-1) : ('accuracy', 0.9736842105263158)" in printed
    assert "#test_score (algo-1) : ('macro_f_1.000', 0.971703" in printed
    assert "Completed - Training job completed" in printed
    # The SDK's deploy prints progress dashes and "!" without a newline before our line.
    answer = printed.split("PREDICTIONS ", 1)[1].splitlines()[0]
    predicted = [p["predicted_label"] for p in json.loads(answer)["predictions"]]
    accuracy = float(np.mean(np.asarray(predicted) == iris.test_labels))
    assert accuracy == 0.9736842105263158
    name = printed.split("ENDPOINT ", 1)[1].splitlines()[0]
    assert name not in [e["EndpointName"] for e in aws.sagemaker.list_endpoints()["Endpoints"]]
    assert name not in [m["ModelName"] for m in aws.sagemaker.list_models()["Models"]]


# The SDK's own k-NN estimator: record_set uploads recordIO-protobuf shards and a manifest (the
# channels have no ContentType: the built-in's default), and its predictor speaks recordIO both
# ways (RecordSerializer, RecordDeserializer).
KNN_ESTIMATOR = r"""
import json, sys, time

_sleep = time.sleep
time.sleep = lambda seconds: _sleep(min(seconds, 0.2))

import boto3
import numpy as np
import sagemaker
from sagemaker import KNN

region, role, bucket, prefix = sys.argv[1:5]
arrays = json.loads(sys.argv[5])
session = sagemaker.Session(boto3.Session(region_name=region))
knn = KNN(
    role=role,
    instance_count=1,
    instance_type="ml.m5.large",
    k=1,
    sample_size=1000,
    predictor_type="classifier",
    output_path=f"s3://{bucket}/{prefix}/output",
    data_location=f"s3://{bucket}/{prefix}/records",
    sagemaker_session=session,
)
float32 = {name: np.array(values, dtype="float32") for name, values in arrays.items()}
train = knn.record_set(float32["train_x"], labels=float32["train_y"])
test = knn.record_set(float32["test_x"], labels=float32["test_y"], channel="test")
knn.fit([train, test], logs=True)
predictor = knn.deploy(initial_instance_count=1, instance_type="ml.t2.medium")
records = predictor.predict(float32["test_x"])
labels = [r.label["predicted_label"].float32_tensor.values[0] for r in records]
print("LABELS " + json.dumps(labels))
predictor.delete_model()
predictor.delete_endpoint()
"""


def test_the_sdks_knn_estimator_trains_on_record_sets_and_predicts_in_recordio(
    sdk_venv: Path,
    aws: Aws,
    iris: Iris,
    moto_url: str,
    local_sagemaker: tuple[LocalSageMaker, list[str]],
) -> None:
    sagemaker_url = local_sagemaker[0].url
    arrays = {
        "train_x": iris.train_features.tolist(),
        "train_y": iris.train_labels.tolist(),
        "test_x": iris.test_features.tolist(),
        "test_y": iris.test_labels.tolist(),
    }
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
    }

    done = run_sdk(
        KNN_ESTIMATOR, REGION, ROLE, BUCKET, "knn-estimator", json.dumps(arrays), env=env
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "#test_score (algo-1) : ('accuracy', 0.9736842105263158)" in done.stdout
    answer = done.stdout.split("LABELS ", 1)[1].splitlines()[0]
    predicted = np.asarray(json.loads(answer))
    assert float(np.mean(predicted == iris.test_labels)) == 0.9736842105263158
