"""The local stack's S3 events carry a sequencer that grows with each upload, as S3's does."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from dropfit_local import s3_sequencer

REGION = "us-east-1"


def test_each_upload_of_a_key_gets_a_greater_sequencer_and_every_rule_the_same() -> None:
    s3_sequencer.install()
    with mock_aws():
        s3, events, sqs = (boto3.client(s, region_name=REGION) for s in ("s3", "events", "sqs"))
        s3.create_bucket(Bucket="data")
        s3.put_bucket_notification_configuration(
            Bucket="data",
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )
        queues = []
        for rule in ("first", "second"):
            url = sqs.create_queue(QueueName=rule)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
            events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
            events.put_targets(
                Rule=rule, Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}]
            )
            queues.append(url)

        for body in (b"v1", b"v2", b"v3"):
            s3.put_object(Bucket="data", Key="incoming/retry.csv", Body=body)

        seen = [
            [
                json.loads(m["Body"])["detail"]["object"]["sequencer"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            ]
            for url in queues
        ]
    first, second = seen
    assert first == second  # one event, one sequencer, whichever rule routes it
    values = [int(sequencer, 16) for sequencer in first]
    assert len(values) == 3
    assert values[0] < values[1] < values[2]
