"""``dropfit delete``, ``rollback`` and ``runs`` in process, against a scripted HTTP API (the
answers of docs/openapi.yaml): what each sends, what it prints, its exit status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from dropfit_cli.main import FAILED, TIMED_OUT, cli

OLD, NEW = "dropfit-iris-000000000000", "dropfit-iris-111111111111"
Answer = tuple[int, Any]


class Scripted(BaseHTTPRequestHandler):
    """Answers each ``METHOD /path`` with its script, in turn (the last answer repeats)."""

    script: ClassVar[dict[str, list[Answer]]] = {}
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        Scripted.seen.append((self.command, self.path, body))
        answers = Scripted.script.get(f"{self.command} {self.path}") or [
            (404, {"error": {"code": "NotFound", "message": "No such route."}})
        ]
        status, document = answers.pop(0) if len(answers) > 1 else answers[0]
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dropfit(tmp_path: Path) -> Iterator[CliRunner]:
    """A CliRunner whose local stack's API is :class:`Scripted`."""
    Scripted.script, Scripted.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outputs = {
        "ApiUrl": f"http://127.0.0.1:{server.server_address[1]}",
        "BucketName": "b",
        "AwsEndpointUrl": "http://127.0.0.1:1",
    }
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    yield CliRunner(env={"DROPFIT_STATE_DIR": str(tmp_path)})
    server.shutdown()
    server.server_close()


DELETED = {
    "model": "iris",
    "status": "deleted",
    "endpoint": "Deleting",
    "removed_runs": [OLD, NEW],
    "stopped_training_jobs": [],
}


def test_delete_asks_first_and_sends_nothing_when_declined(dropfit: CliRunner) -> None:
    Scripted.script["DELETE /models/iris"] = [(200, DELETED)]

    result = dropfit.invoke(cli, ["delete", "iris"], input="n\n")

    assert result.exit_code == FAILED and "Aborted" in result.output
    assert "Delete model iris on the local stack?" in result.output
    assert Scripted.seen == []


def test_delete_once_confirmed_says_what_went_and_what_stays(dropfit: CliRunner) -> None:
    Scripted.script["DELETE /models/iris"] = [(200, DELETED)]

    result = dropfit.invoke(cli, ["delete", "iris"], input="y\n")

    assert result.exit_code == 0, result.output
    assert [(m, p) for m, p, _ in Scripted.seen] == [("DELETE", "/models/iris")]
    assert "deleted model iris: endpoint Deleting" in result.output
    assert "of 2 run(s) removed" in result.output
    assert "uploads, data and run history stay" in result.output


def test_delete_yes_json_prints_the_apis_answer_alone(dropfit: CliRunner) -> None:
    Scripted.script["DELETE /models/iris"] = [(200, DELETED)]
    result = dropfit.invoke(cli, ["delete", "iris", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == DELETED


def test_delete_of_an_unknown_model_keeps_the_apis_message_and_is_status_1(
    dropfit: CliRunner,
) -> None:
    Scripted.script["DELETE /models/nope"] = [
        (404, {"error": {"code": "ModelNotFound", "message": "No model named 'nope'."}})
    ]
    result = dropfit.invoke(cli, ["delete", "nope", "--yes"])
    assert result.exit_code == FAILED
    assert "delete nope: No model named 'nope'. (404 ModelNotFound)" in result.output


def _history(deployed: str, *runs: tuple[str, str], reason: str | None = None) -> dict[str, Any]:
    return {
        "model": "iris",
        "status": "active",
        "deployed_run": deployed,
        "runs": [
            {"run": run, "status": status, "reason": reason, "can_roll_back": run != deployed}
            for run, status in runs
        ],
    }


ACCEPTED = {"model": "iris", "run": OLD, "replaces": NEW, "status": "deploying"}


def test_rollback_asks_for_the_run_and_follows_it_until_it_serves(dropfit: CliRunner) -> None:
    Scripted.script["POST /models/iris/rollback"] = [(202, ACCEPTED)]
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(NEW, (NEW, "DEPLOYED"), (OLD, "DEPLOYING"))),
        (200, _history(OLD, (NEW, "SUPERSEDED"), (OLD, "DEPLOYED"))),
    ]

    result = dropfit.invoke(cli, ["rollback", "iris", "--run", OLD])

    assert result.exit_code == 0, result.output
    assert Scripted.seen[0] == ("POST", "/models/iris/rollback", json.dumps({"run": OLD}))
    assert f"rolling back model iris to run {OLD} (replaces {NEW})" in result.output
    assert "deploying" in result.output and "formatting" not in result.output
    assert f"run {OLD} serves model iris again, in place of {NEW} (deploying " in result.output


def test_rollback_without_a_run_sends_no_body_and_json_ends_with_the_outcome(
    dropfit: CliRunner,
) -> None:
    Scripted.script["POST /models/iris/rollback"] = [(202, ACCEPTED)]
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(OLD, (NEW, "SUPERSEDED"), (OLD, "DEPLOYED")))
    ]

    result = dropfit.invoke(cli, ["rollback", "iris", "--json"])

    assert result.exit_code == 0, result.output
    assert Scripted.seen[0] == ("POST", "/models/iris/rollback", "")
    summary = json.loads(result.output)
    assert (summary["run"], summary["replaces"], summary["outcome"]) == (OLD, NEW, "ready")
    assert set(summary["stage_seconds"]) == {"deploying"}


def test_a_rollback_whose_redeployment_fails_ends_with_the_reason_and_status_1(
    dropfit: CliRunner,
) -> None:
    Scripted.script["POST /models/iris/rollback"] = [(202, ACCEPTED)]
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(NEW, (NEW, "DEPLOYED"), (OLD, "DEPLOYING"))),
        (
            200,
            _history(
                NEW, (NEW, "DEPLOYED"), (OLD, "FAILED"), reason="Deployment failed: ping failed"
            ),
        ),
    ]

    result = dropfit.invoke(cli, ["rollback", "iris"])

    assert result.exit_code == FAILED
    assert f"run {OLD} failed: Deployment failed: ping failed" in result.output


def test_a_rollback_overtaken_by_a_newer_upload_says_which_run_serves(dropfit: CliRunner) -> None:
    newest = "dropfit-iris-222222222222"
    Scripted.script["POST /models/iris/rollback"] = [(202, ACCEPTED)]
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(newest, (newest, "DEPLOYED"), (NEW, "SUPERSEDED"), (OLD, "SUPERSEDED")))
    ]

    result = dropfit.invoke(cli, ["rollback", "iris"])

    assert result.exit_code == FAILED
    assert f"run {OLD} superseded: Run {newest} serves instead." in result.output


def test_a_rollback_still_deploying_at_the_timeout_is_status_4(dropfit: CliRunner) -> None:
    Scripted.script["POST /models/iris/rollback"] = [(202, ACCEPTED)]
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(NEW, (NEW, "DEPLOYED"), (OLD, "DEPLOYING")))
    ]
    result = dropfit.invoke(cli, ["rollback", "iris", "--timeout", "0.5"])
    assert result.exit_code == TIMED_OUT
    assert f"run {OLD} is still deploying after 0 s; `dropfit runs iris`" in result.output


def test_a_refused_rollback_keeps_the_apis_reason(dropfit: CliRunner) -> None:
    message = "Model 'iris' has no earlier deployed run that is still kept."
    Scripted.script["POST /models/iris/rollback"] = [
        (409, {"error": {"code": "Conflict", "message": message}})
    ]
    result = dropfit.invoke(cli, ["rollback", "iris"])
    assert result.exit_code == FAILED
    assert f"roll back iris: {message} (409 Conflict)" in result.output
    assert [m for m, _, _ in Scripted.seen] == ["POST"]  # nothing followed


def test_runs_lists_each_run_the_serving_one_and_which_can_be_rolled_back_to(
    dropfit: CliRunner,
) -> None:
    Scripted.script["GET /models/iris/runs"] = [
        (200, _history(NEW, (NEW, "DEPLOYED"), (OLD, "SUPERSEDED")))
    ]

    table = dropfit.invoke(cli, ["runs", "iris"], env={"COLUMNS": "200"})
    as_json = dropfit.invoke(cli, ["runs", "iris", "--json"])

    assert table.exit_code == 0, table.output
    rows = {line.split("│")[1].strip(): line for line in table.output.splitlines() if "│" in line}
    assert "DEPLOYED (serving)" in rows[NEW] and rows[NEW].split("│")[5].strip() == "no"
    assert rows[OLD].split("│")[5].strip() == "yes"
    assert json.loads(as_json.output)["deployed_run"] == NEW


REPORT = {
    "model": "iris",
    "run": NEW,
    "predictor_type": "multiclass_classifier",
    "metrics": {"accuracy": 0.97},
    "baseline": {"accuracy": 0.34},
    "warnings": [],
}
PAGE = "https://bucket.s3.eu-west-1.amazonaws.com/reports/iris/report.html?X-Amz-Signature=1"


@pytest.mark.parametrize("opened", [True, False])
def test_report_open_opens_the_pages_link_or_says_to_open_it_by_hand(
    dropfit: CliRunner, monkeypatch: pytest.MonkeyPatch, opened: bool
) -> None:
    import webbrowser

    asked: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: asked.append(url) or opened)
    Scripted.script["GET /models/iris/report"] = [(200, REPORT)]
    Scripted.script["GET /models/iris"] = [
        (200, {"model": "iris", "report": {"html_url": PAGE, "expires_in": 900}})
    ]

    result = dropfit.invoke(cli, ["report", "iris", "--open"], env={"COLUMNS": "300"})

    assert asked == [PAGE]
    assert "accuracy 0.97" in result.output and PAGE in result.output
    assert result.exit_code == (0 if opened else FAILED), result.output
    if not opened:
        assert "cannot open the report's page here: open the link above" in result.output
