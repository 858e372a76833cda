"""The tutorial, end to end on the local stack, driven only through the S3 API and HTTP.

Upload ``tests/data/iris.csv`` to ``incoming/iris.csv``, follow the run through
``GET /models/iris`` (formatted -> training -> trained -> endpoint in service), predict every row
of the formatted test split through ``POST /models/iris/predict`` and print the tutorial's
validation table with accuracy and macro F1; then fetch the run's validation report (through
``GET /models/iris/report`` and the link ``GET /models/iris`` gives) and save it under
``.local/reports/``.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropfit_cli.api import ApiClient
from dropfit_local.metrics import accuracy, macro_f1
from dropfit_local.stack import ROOT, LocalStack

DATASET = ROOT / "tests" / "data" / "iris.csv"
REPORTS = ROOT / ".local" / "reports"  # the demo's stack state is temporary; the report is kept
POLL_SECONDS = 0.2


class DemoFailed(RuntimeError):
    """The pipeline did not get the model to serve, or its answers are inconsistent."""


@dataclass(frozen=True)
class Progress:
    """One observation of ``GET /models/{model}``, reduced to what the demo narrates."""

    status: str
    run: str | None
    run_status: str | None
    endpoint_status: str | None
    reason: str | None

    @classmethod
    def of(cls, description: dict[str, Any]) -> Progress:
        latest = description.get("latest_run") or {}
        endpoint = description.get("endpoint") or {}
        return cls(
            status=str(description.get("status")),
            run=latest.get("run"),
            run_status=latest.get("status"),
            endpoint_status=endpoint.get("status"),
            reason=latest.get("reason") or endpoint.get("failure_reason"),
        )

    def stage(self) -> str:
        """The tutorial's words for where the run is."""
        if self.status == "ready":
            return "endpoint in service"
        return {
            "FORMATTING": "formatting",
            "TRAINING": "formatted, training",
            "TRAINED": "trained",
            "DEPLOYING": "trained, endpoint " + str(self.endpoint_status or "creating").lower(),
            "DEPLOYED": "endpoint in service",
            "FAILED": "failed",
        }.get(str(self.run_status), str(self.run_status or self.status).lower())


def wait_until_served(
    api: ApiClient,
    model: str,
    *,
    run_is_new: Callable[[str | None], bool],
    timeout: float,
    say: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    """Poll ``GET /models/{model}`` until a new run serves; :class:`DemoFailed` if it fails."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        response = api.get(f"/models/{model}", timeout=30)
        if response.status == 200:
            description = response.json()
            progress = Progress.of(description)
            if run_is_new(progress.run):
                stage = progress.stage()
                if stage != shown:
                    say(f"  {time.monotonic() - started:6.2f} s  {stage}")
                    shown = stage
                if progress.run_status == "FAILED":
                    raise DemoFailed(f"run {progress.run} failed: {progress.reason}")
                deployed = (description.get("deployed_run") or {}).get("run")
                if progress.status == "ready" and deployed == progress.run:
                    return dict(description)
        elif response.status != 404:
            raise DemoFailed(f"GET /models/{model}: {response.status} {response.text}")
        time.sleep(POLL_SECONDS)
    raise DemoFailed(f"model {model} was not served within {timeout:.0f} s")


def read_test_split(stack: LocalStack, run: dict[str, Any]) -> list[tuple[int, list[float]]]:
    """The formatted, header-less test split (label first, as an int) of a run."""
    # The API doesn't show S3 locations; the operator knows the layout from the template.
    assert stack.model is not None
    formatter = next(f for f in stack.model.functions if "DATASETS_PREFIX" in f.environment)
    key = f"{formatter.environment['DATASETS_PREFIX']}{run['model']}/{run['run']}/test/test.csv"
    body = stack.client("s3").get_object(Bucket=stack.bucket_name, Key=key)["Body"]
    rows = []
    for line in body.read().decode().splitlines():
        if line.strip():
            label, *features = line.split(",")
            rows.append((int(float(label)), [float(value) for value in features]))
    return rows


def run_demo(
    stack: LocalStack, *, timeout: float = 300.0, say: Callable[[str], None] = print
) -> None:
    """Upload, follow, predict, print the table; :class:`DemoFailed` when anything is off."""
    if not DATASET.is_file():
        raise DemoFailed(f"{DATASET} is missing (a copy of the tutorial's iris.csv)")
    model, key = "iris", f"{stack.incoming_prefix}iris.csv"
    api = stack.api_client()  # signed as the stack's ApiAuth requires (IAM by default)
    before = api.get(f"/models/{model}", timeout=30)
    previous = (before.json().get("latest_run") or {}).get("run") if before.ok else None

    say(f"\nUploading {DATASET.relative_to(ROOT)} to s3://{stack.bucket_name}/{key}")
    uploaded = time.monotonic()
    stack.client("s3").put_object(Bucket=stack.bucket_name, Key=key, Body=DATASET.read_bytes())
    description = wait_until_served(
        api,
        model,
        run_is_new=lambda run: run is not None and run != previous,
        timeout=timeout,
        say=say,
        started=uploaded,
    )
    run = description["deployed_run"]
    classes: list[str] = description["classes"]
    features: list[str] = description["features"]
    rows = read_test_split(stack, run)

    response = api.post(
        f"/models/{model}/predict", json={"instances": [values for _, values in rows]}, timeout=60
    )
    first_prediction = time.monotonic() - uploaded
    if response.status != 200:
        raise DemoFailed(f"POST /models/{model}/predict: {response.status} {response.text}")
    answer = response.json()
    if answer["run"] != run["run"] or answer["count"] != len(rows):
        raise DemoFailed(f"unexpected answer: {json.dumps(answer)[:300]}")
    predicted = [classes.index(p["label"]) for p in answer["predictions"]]
    truth = [label for label, _ in rows]

    say(f"\nValidation on the test split ({len(rows)} rows, run {run['run']}):\n")
    say(f"{'#':>3}  {'label':<12} {', '.join(features):<58} {'prediction':<12} correct?")
    for number, ((label, values), guess) in enumerate(zip(rows, predicted, strict=True), 1):
        shown = ", ".join(f"{value:g}" for value in values)
        mark = "yes" if guess == label else "NO"
        say(f"{number:>3}  {classes[label]:<12} {shown:<58} {classes[guess]:<12} {mark}")
    score, f1 = accuracy(truth, predicted), macro_f1(truth, predicted)
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    say(f"\naccuracy {score} ({correct}/{len(rows)}), macro F1 {f1}")
    trained = (run.get("metrics") or {}).get("test:accuracy")
    if trained is not None:
        say(f"the training job's own test accuracy: {trained}")
        if abs(float(trained) - score) > 1e-9:
            raise DemoFailed("the endpoint's answers disagree with the training job's test score")
    say(f"upload -> first prediction {first_prediction:.2f} s")
    saved = save_report(api, model, run["run"], score, timeout=timeout)
    say(f"\nValidation report (the endpoint's answers, figures and plots): {saved}")


def save_report(api: ApiClient, model: str, run: str, accuracy: float, *, timeout: float) -> Path:
    """Wait for the run's report, check it against the demo's own figures, save it locally."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/models/{model}/report", timeout=30)
        if response.status == 200:
            break
        if response.status != 404 or time.monotonic() > deadline:
            raise DemoFailed(f"GET /models/{model}/report: {response.status} {response.text}")
        time.sleep(POLL_SECONDS)
    report = response.json()
    if report["run"] != run or abs(report["metrics"]["accuracy"] - accuracy) > 1e-9:
        raise DemoFailed(f"the report disagrees with the demo's predictions: {response.text[:300]}")
    link = api.get(f"/models/{model}", timeout=30).json()["report"]
    # A presigned URL: no credentials, no signing, as a browser opens it.
    with urllib.request.urlopen(link["html_url"], timeout=30) as answer:
        page = answer.read().decode()
    if not page.startswith("<!DOCTYPE html>"):
        raise DemoFailed(f"the report's link answered {page[:200]!r}")
    folder = REPORTS / model / run
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    (folder / "report.html").write_text(page)
    return folder / "report.html"


def main(stack_options: dict[str, Any]) -> int:
    """``python -m dropfit_local demo``: start, run the tutorial, stop; the exit status."""
    wall = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="dropfit-demo-") as scratch:
            options = {
                **stack_options,
                "state_dir": stack_options.get("state_dir") or Path(scratch),
            }
            with LocalStack(**options) as stack:
                run_demo(stack)
    except (DemoFailed, OSError) as error:
        print(f"\ndemo FAILED: {error}")
        return 1
    print(f"wall time {time.monotonic() - wall:.2f} s (stack start and stop included)")
    return 0
