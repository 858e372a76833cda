"""What ``dropfit`` prints for people: the predictions table with neighbours, models, status."""

from __future__ import annotations

import io

from rich.console import Console

from dropfit_cli.output import Output


def printed(show: str, document: dict) -> str:
    console = Console(width=120, file=io.StringIO(), record=True)
    getattr(Output(as_json=False, console=console), show)(document)
    return console.export_text()


def test_predictions_show_each_label_and_its_nearest_training_points() -> None:
    answer = {
        "model": "iris",
        "run": "dropfit-iris-0123456789ab",
        "count": 2,
        "predictions": [
            {"label": "setosa", "neighbors": [{"label": "setosa", "distance": 0.0}]},
            {"label": "virginica", "neighbors": [{"label": "virginica", "distance": None}]},
        ],
    }
    text = printed("predictions", answer)
    assert "iris (run dropfit-iris-0123456789ab)" in text
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["1", "setosa", "setosa 0"],
        ["2", "virginica", "virginica overflow"],  # a distance beyond float32 is null
    ]


def test_no_models_says_how_to_make_one() -> None:
    assert "`dropfit train FILE` makes one" in printed("models", {"models": []})


def test_status_shows_the_reason_of_a_failed_run() -> None:
    description = {
        "model": "wine",
        "status": "failed",
        "endpoint": {"name": "dropfit-wine", "status": "NotCreated", "failure_reason": None},
        "latest_run": {
            "run": "dropfit-wine-0123456789ab",
            "status": "FAILED",
            "reason": "No label column 'x'.",
        },
        "deployed_run": None,
    }
    text = printed("status", description)
    assert "dropfit-wine-0123456789ab (FAILED)" in text
    assert "No label column 'x'." in text
