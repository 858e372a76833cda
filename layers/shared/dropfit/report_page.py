"""report.html: a report as one self-contained page, figures drawn with matplotlib, inlined as PNG.

Nothing on the page refers to anything outside it (no scripts, fonts, styles or images to fetch):
it opens from a presigned URL, a mail attachment or a disk, with or without a network.
Only the report function imports this module (matplotlib is its dependency alone).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

# A bare Figure draws into memory with the Agg renderer: no pyplot, no display, no global state.
from matplotlib.figure import Figure

# Confusion matrices with more classes than this are drawn without a count in each cell.
ANNOTATED_CLASSES = 30
# Points drawn in a scatter plot; more would only blacken it (and slow the page).
SCATTER_POINTS = 20_000

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;
padding:0 1em;color:#1b1f24}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid
#d0d7de}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d7de;padding:.2em .55em;
text-align:right}th{background:#f6f8fa}td.text,th.text{text-align:left}
tr.wrong td{background:#ffebe9}.muted{color:#57606a}
.warning{background:#fff8c5;border:1px solid #d4a72c;padding:.5em .8em;margin:.5em 0}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{color:#57606a;text-align:center}
img{max-width:100%}.scroll{overflow-x:auto}
"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(figure: Figure, name: str, caption: str) -> str:
    return (
        f'<figure id="plot-{name}"><img alt="{escape(caption)}" '
        f'src="data:image/png;base64,{_png(figure)}"><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


def confusion_plot(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    n = len(classes)
    size = min(3 + 0.45 * n, 12)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    if n <= ANNOTATED_CLASSES:
        top = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                colour = "white" if top and count > top / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=colour)
        axes.set_xticks(range(n), classes, rotation=45, ha="right")
        axes.set_yticks(range(n), classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix (test rows)")
    return _figure(figure, "confusion", "Confusion matrix: rows are the true classes")


def _thin(values: Sequence[Any]) -> Sequence[Any]:
    step = max(1, len(values) // SCATTER_POINTS)
    return values[::step]


def predicted_vs_actual_plot(actual: Sequence[float], predicted: Sequence[float]) -> str:
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    axes.scatter(_thin(actual), _thin(predicted), s=12, alpha=0.6)
    low, high = min(*actual, *predicted), max(*actual, *predicted)
    axes.plot([low, high], [low, high], color="#cf222e", linewidth=1, label="prediction = label")
    axes.set_xlabel("label (test row)")
    axes.set_ylabel("prediction (endpoint)")
    axes.set_title("Predicted against actual")
    axes.legend(loc="upper left")
    return _figure(figure, "predicted-vs-actual", "Predicted against actual values")


def residual_plot(actual: Sequence[float], predicted: Sequence[float]) -> str:
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    residuals = [p - a for a, p in zip(actual, predicted, strict=True)]
    axes.scatter(_thin(predicted), _thin(residuals), s=12, alpha=0.6)
    axes.axhline(0, color="#cf222e", linewidth=1)
    axes.set_xlabel("prediction (endpoint)")
    axes.set_ylabel("residual (prediction - label)")
    axes.set_title("Residuals")
    return _figure(figure, "residuals", "Residuals against predictions")


def k_curve_plot(search: Mapping[str, Any]) -> str:
    figure = Figure(figsize=(5.5, 4))
    axes = figure.subplots()
    candidates, scores = search["candidates"], search["scores"]
    axes.plot(candidates, scores, marker="o")
    chosen = search.get("chosen")
    if chosen is not None and chosen in candidates:
        axes.scatter(
            [chosen], [scores[candidates.index(chosen)]], s=120, facecolors="none",
            edgecolors="#cf222e", linewidths=2, zorder=3, label=f"chosen k = {chosen}",
        )  # fmt: skip
        axes.legend()
    axes.set_xlabel("k")
    axes.set_ylabel(f"{search.get('metric', 'score')} ({search.get('folds', '?')}-fold CV)")
    axes.set_title("k chosen by cross-validation on the training rows")
    return _figure(figure, "k-curve", "Cross-validated score for each candidate k")


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))


def _rows(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(
        f'<tr><th class="text">{escape(k)}</th><td>{_number(v)}</td></tr>' for k, v in pairs
    )


def _metrics_section(report: Mapping[str, Any]) -> str:
    metrics, baseline = report["metrics"], report["baseline"]
    if report["predictor_type"] == "classifier":
        summary = _rows(
            [
                ("accuracy", metrics["accuracy"]),
                ("macro F1", metrics["macro_f1"]),
                (f"baseline: always {baseline['class']!r}, accuracy", baseline["accuracy"]),
                ("baseline macro F1", baseline["macro_f1"]),
            ]
        )
        per_class = "".join(
            f'<tr><td class="text">{escape(c["class"])}</td><td>{c["precision"]:.4f}</td>'
            f"<td>{c['recall']:.4f}</td><td>{c['f1']:.4f}</td><td>{c['support']}</td></tr>"
            for c in metrics["per_class"]
        )
        matrix = metrics["confusion_matrix"]
        return (
            f'<h2>Scores</h2><table id="metrics">{summary}</table>'
            '<h2>Per class</h2><table id="per-class"><tr><th class="text">class</th>'
            "<th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            f"{per_class}</table>" + confusion_plot(matrix["counts"], matrix["classes"])
        )
    summary = _rows(
        [
            ("MSE", metrics["mse"]),
            ("MAE", metrics["mae"]),
            ("R²", metrics["r2"]),
            (f"baseline: always the training mean {baseline['value']:.6g}, MSE", baseline["mse"]),
            ("baseline MAE", baseline["mae"]),
            ("baseline R²", baseline["r2"]),
        ]
    )
    rows = report["table"]["rows"]
    actual = [r["label"] for r in rows]
    predicted = [r["prediction"] for r in rows]
    return (
        f'<h2>Scores</h2><table id="metrics">{summary}</table>'
        + predicted_vs_actual_plot(actual, predicted)
        + residual_plot(actual, predicted)
    )


def _settings_section(report: Mapping[str, Any]) -> str:
    dataset = report["dataset"]
    pairs: list[tuple[str, Any]] = [
        ("label column", report.get("label_column")),
        ("k", report.get("k")),
        ("scaling", report["scaling"]),
        ("rows dropped (missing values)", report["rows_dropped"]),
        ("rows in the upload", dataset.get("rows")),
        ("training rows", dataset.get("train_rows")),
        ("test rows", dataset["test_rows"]),
        ("test rows evaluated", dataset["evaluated_rows"]),
        ("endpoint requests", report["predictions_from"]["invocations"]),
    ]
    pairs += [(f"training job {k}", v) for k, v in sorted(report["training_job_metrics"].items())]
    preprocessing = report.get("preprocessing") or {}
    scale = preprocessing.get("scale") or {}
    if scale.get("chosen_by"):
        pairs.append(("scaling chosen by", scale["chosen_by"]))
    for name in ("encode", "missing"):
        if preprocessing.get(name):
            method = preprocessing[name]
            pairs.append((name, method.get("method") if isinstance(method, Mapping) else method))
    section = f'<h2>Run</h2><table id="settings">{_rows(pairs)}</table>'
    search = report.get("k_search")
    if search:
        note = (
            f"<p class=muted>k searched over {len(search['candidates'])} candidates on "
            f"{_number(search.get('sampled_rows'))} training rows; chosen k = "
            f"{_number(search.get('chosen'))}.</p>"
        )
        section += "<h2>Choice of k</h2>" + note + k_curve_plot(search)
    return section


def _cell(value: Any) -> str:
    if value is None:  # a category the training rows did not have
        return '<td class="text muted">(unseen)</td>'
    if isinstance(value, str):
        return f'<td class="text">{escape(value)}</td>'
    return f"<td>{value:g}</td>"


def _table_section(report: Mapping[str, Any]) -> str:
    table, features = report["table"], report["features"]
    classifier = report["predictor_type"] == "classifier"
    scaled = report["scaling"] != "none" and not report.get("features_as_uploaded")
    heading = "features as the model sees them (scaled)" if scaled else ""
    head = (
        '<tr><th>#</th><th class="text">label</th>'
        + "".join(f"<th>{escape(f)}</th>" for f in features)
        + '<th class="text">prediction</th>'
        + ("<th>correct?</th>" if classifier else "<th>error</th>")
        + "</tr>"
    )
    body = []
    for number, row in enumerate(table["rows"], 1):
        cells = "".join(_cell(v) for v in row["features"])
        if classifier:
            mark = "yes" if row["correct"] else "NO"
            css = "" if row["correct"] else ' class="wrong"'
            body.append(
                f'<tr{css}><td>{number}</td><td class="text">{escape(row["label"])}</td>{cells}'
                f'<td class="text">{escape(row["prediction"])}</td><td>{mark}</td></tr>'
            )
        else:
            body.append(
                f'<tr><td>{number}</td><td class="text">{row["label"]:g}</td>{cells}'
                f'<td class="text">{row["prediction"]:g}</td><td>{row["error"]:+.4g}</td></tr>'
            )
    more = (
        f"<p class=muted>The first {table['shown']:,} of {table['total']:,} evaluated rows; "
        "the figures above count them all.</p>"
        if table["shown"] < table["total"]
        else ""
    )
    note = f"<p class=muted>{heading}</p>" if heading else ""
    return (
        f"<h2>Validation table (test split)</h2>{note}{more}"
        f'<div class="scroll"><table id="validation">{head}{"".join(body)}</table></div>'
    )


def render(report: Mapping[str, Any]) -> str:
    """The whole page for ``report`` (report.json's content)."""
    warnings = "".join(
        f'<div class="warning" data-code="{escape(w["code"])}">{escape(w["message"])}</div>'
        for w in report["warnings"]
    )
    kind = "classifier" if report["predictor_type"] == "classifier" else "regressor"
    title = f"Dropfit report: {report['model']}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p class=muted>Run {escape(report['run'])} ({kind}), written "
        f"{escape(report['created_at'])}. Predictions are the deployed endpoint's own answers "
        "to the test split.</p>"
        + (f'<h2>Warnings</h2><div id="warnings">{warnings}</div>' if warnings else "")
        + _metrics_section(report)
        + _settings_section(report)
        + _table_section(report)
        + "</body></html>\n"
    )
