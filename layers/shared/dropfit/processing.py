"""Uploads above the stack's threshold are formatted by a SageMaker Processing job.

The format function validates the upload's options and header at once (a doomed upload fails in
seconds, before anything is paid for), then hands the rest to a Processing job in the
scikit-learn image running :mod:`dropfit.processing_job`: the same code, so the same channels.

The job's code is this package, published by the format function under
``processing/code/<content hash>/dropfit/`` the first time a function with that code starts a
job (a marker object written last says the copy is complete), so every deployment of new code
publishes once and jobs never run a half-written copy. The job's own options go to
``processing/jobs/<model>/<job>/options.json``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dropfit.aws.s3 import Storage, Upload
from dropfit.csvscan import choose_label, parse_header
from dropfit.csvsource import open_text
from dropfit.options import UploadOptions
from dropfit.processing_job import JobOptions

PACKAGE_DIR = Path(__file__).resolve().parent
CODE_MARKER = "COMPLETE"
CODE_CONTENT_TYPE = "text/x-python"
JOB_CONTENT_TYPE = "application/json"


def check_header(upload: Upload, options: UploadOptions) -> None:
    """The checks that need only the first line: the header, and a requested label column.

    Raises :class:`InvalidUpload` with the message the full formatter would give.
    """
    with open_text(upload.open) as text:
        header = parse_header(text)
    if options.label is not None:
        choose_label(header, [True] * len(header), options.label)


def package_files(package_dir: Path = PACKAGE_DIR) -> Iterator[tuple[str, bytes]]:
    """The package's Python files, as (path relative to its parent, content), in sorted order."""
    for path in sorted(package_dir.rglob("*.py")):
        yield path.relative_to(package_dir.parent).as_posix(), path.read_bytes()


def code_digest(files: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:16]


@dataclass
class CodePublisher:
    """Copies the package to S3 once per content hash; the prefix jobs read it from."""

    storage: Storage
    bucket: str
    prefix: str  # processing/code/
    package_dir: Path = PACKAGE_DIR
    _published: str | None = field(default=None, init=False)

    def publish(self) -> str:
        if self._published is not None:
            return self._published
        files = list(package_files(self.package_dir))
        base = f"{self.prefix}{code_digest(files)}/"
        marker = f"{base}{CODE_MARKER}"
        if self.storage.read_object(self.bucket, marker) is None:
            for name, content in files:
                self.storage.put(self.bucket, f"{base}{name}", content, CODE_CONTENT_TYPE)
            self.storage.put(self.bucket, marker, b"", "text/plain")
        self._published = f"s3://{self.bucket}/{base}"
        return self._published


def job_options_key(jobs_prefix: str, model: str, job: str) -> str:
    return f"{jobs_prefix}{model}/{job}/options.json"


def write_job_options(storage: Storage, bucket: str, key: str, options: JobOptions) -> str:
    """The job's options.json at ``key``; the S3 prefix of its ``job`` input."""
    storage.put(bucket, key, options.to_json(), JOB_CONTENT_TYPE)
    return f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
