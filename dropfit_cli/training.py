"""``dropfit train``: the upload (options as S3 object metadata, as README's table) and what the
command shows once the run ends (metrics, report, an example prediction)."""

from __future__ import annotations

import csv
import io
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropfit_cli.follow import RunWatch
from dropfit_cli.target import Target


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its key, the model it trains, what the model showed before it."""

    file: Path
    key: str
    model: str
    previous: dict[str, Any]  # GET /models/{model} before the upload ({} if none)

    def watch(self, incoming_prefix: str) -> RunWatch:
        """A :class:`RunWatch` for this upload's run (or its refusal)."""
        run_before = (self.previous.get("latest_run") or {}).get("run")
        refusal_before = self.previous.get("refused_upload")
        relative = self.key[len(incoming_prefix) :]
        return RunWatch(
            is_new=lambda run: run is not None and run != run_before,
            is_refusal=lambda refused: refused != refusal_before and refused["key"] == relative,
        )


def metadata(
    *, name: str | None, label: str | None, k: str | None, options: tuple[str, ...]
) -> dict[str, str]:
    """The object's metadata: ``--name``, ``--label``, ``--k`` and every ``-o NAME=VALUE``.

    Only the form is checked here; the format function judges the options themselves and a
    refused one ends the run with its reason.
    """
    chosen: dict[str, str] = {}
    for item in options:
        option, separator, value = item.partition("=")
        if not separator or not option.strip():
            raise _usage(f"-o {item!r}: expected NAME=VALUE, e.g. -o test_fraction=0.2")
        _add(chosen, option.strip(), value.strip())
    for option, given in (("name", name), ("label", label), ("k", k)):
        if given is not None:
            _add(chosen, option, given)
    return chosen


def _add(chosen: dict[str, str], option: str, value: str) -> None:
    key = option.lower()
    if key in chosen:
        raise _usage(f"option {option!r} is given twice")
    chosen[key] = value


def _usage(message: str) -> Exception:
    import click

    return click.UsageError(message)


def upload(target: Target, file: Path, *, metadata: dict[str, str]) -> Upload:
    """Upload ``file`` as ``incoming/<its name>`` with ``metadata`` (``name`` names the model)."""
    from dropfit.errors import InvalidModelName
    from dropfit.names import model_name_from_key
    from dropfit.options import requested_model_name

    key = target.incoming_prefix + file.name
    try:
        model = requested_model_name(metadata) or model_name_from_key(key, target.incoming_prefix)
    except InvalidModelName as error:
        raise _usage(error.message) from None
    before = target.api().get(f"models/{model}")
    previous = before.json() if before.ok else {}
    target.client("s3").upload_file(str(file), target.bucket, key, ExtraArgs={"Metadata": metadata})
    return Upload(file, key, model, previous)


def summary(target: Target, upload: Upload, watch: RunWatch) -> dict[str, Any]:
    """What ``train`` reports: outcome, stage times, metrics, report, an example prediction."""
    description = watch.description
    deployed = description.get("deployed_run") or {}
    result: dict[str, Any] = {
        "model": upload.model,
        "run": watch.run,
        "outcome": watch.outcome or "timed out",
        "stage": watch.stage,
        "stage_seconds": watch.stage_seconds(),
    }
    if watch.reason:
        result["reason"] = watch.reason
    if watch.outcome == "ready":
        result["metrics"] = deployed.get("metrics") or description.get("metrics") or {}
        values = example_values(upload.file, description.get("features") or [])
        stack = "" if target.is_local else f" --stack {shlex.quote(target.name)}"
        result["predict"] = f"dropfit predict {upload.model} {' '.join(values)}{stack}"
    return result


def example_values(file: Path, features: list[str]) -> list[str]:
    """The first data row's feature values in training order (placeholders if unreadable)."""
    placeholders = [f"<{feature}>" for feature in features]
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(io.StringIO(handle.read(1 << 16)))
            header = [column.strip().lower() for column in next(reader)]
            row = next(reader)
        return [row[header.index(feature.lower())].strip() for feature in features]
    except (OSError, UnicodeDecodeError, StopIteration, ValueError, IndexError, csv.Error):
        return placeholders
