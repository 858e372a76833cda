"""The SageMaker Processing job's entry point: one upload in, the run's channels out.

``python3 -m dropfit.processing_job --upload DIR --job FILE --output DIR`` runs in the
scikit-learn processing image (and in the local SageMaker, with the same layout under a folder
of its own). It does what the format function does in place, with the same code, so the channels
are the same bytes: :func:`dropfit.dataset.plan_dataset` then :meth:`DatasetPlan.write`, to
``DIR/train/``, ``DIR/test/test.csv`` and ``DIR/metadata/metadata.json``, which the job's outputs
upload to ``datasets/<model>/<run>/``. An upload that turns out invalid writes the reason to
``/opt/ml/output/message`` (the job's ``ExitMessage``) and exits 1; nothing is written to the
outputs then. Needs numpy and pandas (the image has them); no AWS call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropfit.dataset import TrainLayout, plan_dataset
from dropfit.errors import InvalidUpload
from dropfit.options import Defaults, UploadOptions, parse_options

MESSAGE_FILE = Path("/opt/ml/output/message")
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
EXIT_MESSAGE_BYTES = 1024


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What the format function hands the job (``options.json``): the upload's S3 metadata,
    its file name, the stack's defaults and the training instance count."""

    upload_file: str
    metadata: dict[str, str]
    defaults: dict[str, str]  # Defaults.parse's arguments, as the stack's parameters say them
    training_instance_count: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "upload_file": self.upload_file,
                "metadata": self.metadata,
                "defaults": self.defaults,
                "training_instance_count": self.training_instance_count,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> JobOptions:
        document: Any = json.loads(data)
        return cls(
            upload_file=str(document["upload_file"]),
            metadata={str(k): str(v) for k, v in document["metadata"].items()},
            defaults={str(k): str(v) for k, v in document["defaults"].items()},
            training_instance_count=int(document["training_instance_count"]),
        )

    def parsed(self) -> tuple[UploadOptions, Defaults]:
        defaults = Defaults.parse(**self.defaults)
        return parse_options(self.metadata, defaults), defaults


def format_upload(upload: Path, job: JobOptions, output: Path) -> None:
    """Validate and format ``upload`` into ``output``'s train/, test/ and metadata/ folders."""
    options, defaults = job.parsed()

    def source() -> Any:
        return upload.open("rb")

    plan = plan_dataset(
        source, options, defaults.k, TrainLayout(instance_count=job.training_instance_count)
    )
    folders = {name: output / name for name in ("train", "test", "metadata")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    train = [(folders["train"] / name).open("wb") for name in plan.train_object_names()]
    test = (folders["test"] / "test.csv").open("wb")
    try:
        meta = plan.write(train, test)
    finally:
        for sink in (*train, test):
            sink.close()
    (folders["metadata"] / "metadata.json").write_bytes(meta.to_json())


def is_first_host(config: Path = RESOURCE_CONFIG) -> bool:
    """The formatter is one stream: with several instances, the first formats, the others
    exit at once (their outputs stay empty)."""
    if not config.exists():
        return True
    resources = json.loads(config.read_text())
    hosts = sorted(resources.get("hosts") or [resources.get("current_host")])
    return bool(resources.get("current_host") == hosts[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload", type=Path, required=True, help="the upload input's folder")
    parser.add_argument("--job", type=Path, required=True, help="options.json")
    parser.add_argument("--output", type=Path, required=True, help="the outputs' parent folder")
    parser.add_argument("--resource-config", type=Path, default=RESOURCE_CONFIG)
    parser.add_argument("--message", type=Path, default=MESSAGE_FILE, help="the ExitMessage file")
    args = parser.parse_args(argv)
    if not is_first_host(args.resource_config):
        return 0
    job = JobOptions.from_json(args.job.read_bytes())
    try:
        format_upload(args.upload / job.upload_file, job, args.output)
    except InvalidUpload as error:
        args.message.parent.mkdir(parents=True, exist_ok=True)
        args.message.write_bytes(error.message.encode()[:EXIT_MESSAGE_BYTES])
        print(f"upload rejected: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
