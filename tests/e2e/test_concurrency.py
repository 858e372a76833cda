"""Concurrency on the local stack: bursts of uploads, repeated events, predictions mid-update.

The session's stack runs two runtimes per function and delivers two events per rule at a time,
so uploads, duplicates and deployments really overlap, as Lambda's asynchronous invocations do.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from .stack import IRIS, Local, list_all

pytestmark = pytest.mark.e2e

BURST = [f"burst-{i}" for i in range(10)]
CLIENTS = 50
DUPLICATE = '"message":"duplicate upload event ignored"'  # the format function's log line
# One row of each species (the first of each in iris.csv).
ROWS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]
SPECIES = ["setosa", "versicolor", "virginica"]
# The same flowers under other names, sorting the other way round: each class gets another int,
# so labels mapped with the other run's label map would show wrong names and wrong species.
RENAMED = {"setosa": "z-setosa", "versicolor": "y-versicolor", "virginica": "x-virginica"}


def renamed_iris() -> bytes:
    text = IRIS.decode()
    for old, new in RENAMED.items():
        assert f',"{old}"\n' in text
        text = text.replace(f',"{old}"\n', f',"{new}"\n')
    return text.encode()


def test_ten_uploads_at_once_and_an_event_delivered_three_times_make_ten_jobs_and_endpoints(
    local: Local,
) -> None:
    repeated_key = f"{local.incoming}{BURST[0]}.csv"
    delivered = f"'Object Created' {repeated_key} -> format: attempt 1 ok"
    duplicates_before = local.log_count(DUPLICATE)
    with local.spy_on_uploads(repeated_key) as spy, ThreadPoolExecutor(len(BURST)) as pool:
        list(pool.map(lambda model: local.upload(f"{model}.csv", IRIS), BURST))
        (message,) = spy.wait_for(repeated_key)
        # EventBridge delivers at least once: the identical event twice more, at once.
        assert local.redeliver(message, copies=2)["FailedEntryCount"] == 0
        runs = dict(zip(BURST, pool.map(local.wait_for_new_run, BURST), strict=True))
    local.wait_until(
        "three deliveries of the repeated event", lambda: local.log_count(delivered) == 3
    )

    served = {model: d["deployed_run"]["run"] for model, d in runs.items()}
    assert all(d["status"] == "ready" for d in runs.values()), runs
    assert all(d["latest_run"]["run"] == served[model] for model, d in runs.items())
    jobs = local.training_jobs(f"{local.prefix}-burst-")
    assert sorted(job["TrainingJobName"] for job in jobs) == sorted(served.values())
    assert {job["TrainingJobStatus"] for job in jobs} == {"Completed"}
    endpoints = list_all(local.sagemaker.list_endpoints, "Endpoints", f"{local.prefix}-burst-")
    assert sorted(e["EndpointName"] for e in endpoints) == sorted(
        f"{local.prefix}-{m}" for m in BURST
    )
    assert {e["EndpointStatus"] for e in endpoints} == {"InService"}
    for model, run in served.items():
        endpoint = local.sagemaker.describe_endpoint(EndpointName=f"{local.prefix}-{model}")
        assert endpoint["EndpointConfigName"] == run
    # The two repeats were recognised as such by the format function.
    assert local.log_count(DUPLICATE) - duplicates_before == 2


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int
    retry_after: str | None
    body: dict[str, Any] | None


def test_predictions_during_an_endpoint_update_carry_the_labels_of_the_run_that_answered(
    local: Local,
) -> None:
    local.upload("shift.csv", IRIS)
    first = local.wait_for_new_run("shift")
    old_run = first["deployed_run"]["run"]
    labels = {old_run: SPECIES}
    assert [p["label"] for p in local.predict("shift", ROWS).json()["predictions"]] == SPECIES

    answers: list[Answer] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            session.auth = local.signed
            while not stop.is_set():
                started = time.time()  # the clock of the endpoint's events
                response = session.post(
                    f"{local.api}/models/shift/predict", json={"instances": ROWS}, timeout=60
                )
                is_json = response.headers.get("content-type", "").startswith("application/json")
                answers.append(
                    Answer(
                        started,
                        time.time(),
                        response.status_code,
                        response.headers.get("Retry-After"),
                        response.json() if is_json else None,
                    )
                )

    endpoint_events = {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Endpoint State Change"],
        "detail": {"EndpointName": [f"{local.prefix}-shift"]},
    }
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    with local.spy(endpoint_events) as changes:
        for thread in threads:
            thread.start()
        try:
            local.upload("shift.csv", renamed_iris())
            second = local.wait_for_new_run("shift", previous=old_run)
            time.sleep(1)  # and a little after the switch
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        # The update window, by the endpoint's own clock: UPDATING until IN_SERVICE.
        details = sorted(
            (json.loads(m["Body"])["detail"] for m in changes.drain()),
            key=lambda detail: detail["LastModifiedTime"],
        )

    new_run = second["deployed_run"]["run"]
    labels[new_run] = [RENAMED[s] for s in SPECIES]
    assert second["classes"] == sorted(RENAMED.values())
    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert all(a.retry_after for a in answers if a.status == 503)
    by_run: Counter[str] = Counter()
    for answer in answers:
        if answer.status == 200:
            assert answer.body is not None
            run = answer.body["run"]
            assert [p["label"] for p in answer.body["predictions"]] == labels[run], answer
            by_run[run] += 1
    assert set(by_run) == {old_run, new_run}, by_run  # the update happened mid-stream
    statuses_seen = [(d["EndpointStatus"], d["EndpointConfigName"]) for d in details]
    assert statuses_seen == [("UPDATING", old_run), ("IN_SERVICE", new_run)], statuses_seen
    window = (details[0]["LastModifiedTime"] / 1000, details[1]["LastModifiedTime"] / 1000)
    during = [a for a in answers if a.started <= window[1] and a.ended >= window[0]]
    assert during, "no prediction was in flight while the endpoint was Updating"
    # Each answer's run is the one the endpoint could have served it with (event times are ms).
    assert all(a.ended >= window[0] - 0.005 for a in answers if run_of(a) == new_run)
    assert all(a.started <= window[1] + 0.005 for a in answers if run_of(a) == old_run)
    print(
        f"\n{len(answers)} predictions from {CLIENTS} clients: status {dict(statuses)}, "
        f"by run {dict(by_run)}, {len(during)} in flight while the endpoint was Updating "
        f"({window[1] - window[0]:.2f} s)"
    )


def run_of(answer: Answer) -> str | None:
    return answer.body.get("run") if answer.status == 200 and answer.body else None
