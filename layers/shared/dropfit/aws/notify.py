"""SNS: tell the failure topic about a failed run."""

from __future__ import annotations

import json
from typing import Any


class FailureNotifier:
    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def run_failed(self, model: str, run: str, stage: str, reason: str) -> None:
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=f"Dropfit: {model} failed at {stage}"[:100],
            Message=json.dumps({"model": model, "run": run, "stage": stage, "reason": reason}),
        )
