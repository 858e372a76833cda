"""The tutorial, end to end on the local stack, driven only through the S3 API and HTTP.

Upload ``tests/data/iris.csv`` to ``incoming/iris.csv`` and follow the run through
``GET /models/iris`` (formatting -> training -> deploying -> ready) with ``dropfit train``'s own
code, predict every row of the formatted test split through ``POST /models/iris/predict`` and
print the tutorial's validation table with accuracy and macro F1; then fetch the run's
validation report (through ``GET /models/iris/report`` and the link ``GET /models/iris`` gives)
and save it under ``.local/reports/``.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from dropfit_cli import training
from dropfit_cli.api import ApiClient
from dropfit_cli.follow import FollowError
from dropfit_cli.output import Output
from dropfit_cli.target import Target
from dropfit_local.metrics import accuracy, macro_f1
from dropfit_local.stack import ROOT, LocalStack

DATASET = ROOT / "tests" / "data" / "iris.csv"
REPORTS = ROOT / ".local" / "reports"  # the demo's stack state is temporary; the report is kept
LOG_NAME = "demo.log"
POLL_SECONDS = 0.2


class DemoFailed(RuntimeError):
    """The pipeline did not get the model to serve, or its answers are inconsistent."""


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
    stack: LocalStack,
    *,
    timeout: float = 300.0,
    say: Callable[[str], None] = print,
    out: Output | None = None,
) -> None:
    """Upload, follow, predict, print the table; :class:`DemoFailed` when anything is off.

    ``dropfit train``'s own code uploads and follows the run (its progress display on ``out``,
    a quiet one by default); ``say`` gets the narration and the table.
    """
    if not DATASET.is_file():
        raise DemoFailed(f"{DATASET} is missing (a copy of the tutorial's iris.csv)")
    out = out or Output(as_json=False, console=Console(quiet=True))
    assert stack.model is not None, "start() the stack first"
    target = Target("local", stack.outputs, stack.model.region, stack.api_authorisation())
    api = target.api()

    key = f"{stack.incoming_prefix}{DATASET.name}"
    say(f"\nUploading {DATASET.relative_to(ROOT)} to s3://{stack.bucket_name}/{key}")
    uploaded = time.monotonic()
    upload = training.upload(target, DATASET, metadata={})
    watch = out.follow(target, upload, timeout=timeout)
    if watch.outcome != "ready":
        raise DemoFailed(
            f"run {watch.run} {watch.outcome or f'still {watch.stage} after {timeout:.0f} s'}: "
            f"{watch.reason or ''}"
        )
    out.train_summary(training.summary(target, upload, watch))
    description = watch.description
    model = upload.model
    run = description["deployed_run"]
    classes: list[str] = description["classes"]
    features: list[str] = description["features"]
    rows = read_test_split(stack, run)

    response = api.post(
        f"models/{model}/predict", json={"instances": [values for _, values in rows]}
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
    """``dropfit demo`` (``python -m dropfit_local demo``): start, run the tutorial, stop.

    The progress is on screen; the stack's and the Lambdas' log lines go to ``demo.log`` in
    ``.local/`` (or the ``--state-dir`` given), whose path is printed first.
    """
    wall = time.monotonic()
    log_path = (stack_options.get("state_dir") or ROOT / ".local") / LOG_NAME
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log_file:
        lock = threading.Lock()

        def log(line: str) -> None:
            with lock:
                log_file.write(line + "\n")
                log_file.flush()

        print(f"Starting the local stack (its log and the Lambdas': {_shown(log_path)})")
        try:
            with tempfile.TemporaryDirectory(prefix="dropfit-demo-") as scratch:
                options = {
                    **stack_options,
                    "state_dir": stack_options.get("state_dir") or Path(scratch),
                    "log": log,
                }
                with LocalStack(**options) as stack:
                    print(f"stack ready in {stack.startup_seconds:.2f} s")
                    run_demo(stack, out=Output(as_json=False))
        except (DemoFailed, FollowError, OSError) as error:
            print(f"\ndemo FAILED: {error}\n(the log: {_shown(log_path)})")
            return 1
    print(f"wall time {time.monotonic() - wall:.2f} s (stack start and stop included)")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
