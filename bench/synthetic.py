"""Synthetic uploads: 16 float features and a 5-class text label (not first), of a given size.

Deterministic for a (size, seed): the same bytes every run, cached under a temporary directory
(never in the repository) because the 1 GB one takes a while to write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

FEATURES = 16
LABEL_AT = 10  # the label column sits among the features, as in many exports
CLASSES = ("alpha", "bravo", "charlie", "delta", "echo")
_VERSION = 1
_ROWS_PER_CHUNK = 50_000


def header(features: int = FEATURES) -> str:
    names = [f"f{i}" for i in range(features)]
    names.insert(LABEL_AT, "species")
    return ",".join(names)


def write_csv(
    path: Path, size_bytes: int, seed: int = 0, features: int = FEATURES, rows: int | None = None
) -> Path:
    """Write a CSV of about ``size_bytes`` (whole rows), or of ``rows`` rows, to ``path``."""
    rng = np.random.default_rng(seed)
    # A pool of decimal texts with 1 to 5 decimals, as measured data tends to have.
    values = rng.normal(0.0, 10.0, 200_000)
    decimals = rng.integers(1, 6, values.size)
    pool = np.array([repr(round(float(v), int(d))) for v, d in zip(values, decimals, strict=True)])
    classes = np.array(CLASSES)
    written = 0
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="ascii", newline="\n") as out:
        line = header(features) + "\n"
        out.write(line)
        written += len(line)
        left = rows if rows is not None else -1
        while written < size_bytes and left != 0:
            cells = pool[rng.integers(0, pool.size, (_ROWS_PER_CHUNK, features))].astype(object)
            labels = classes[rng.integers(0, len(classes), _ROWS_PER_CHUNK)].astype(object)
            table = np.concatenate(
                [cells[:, :LABEL_AT], labels[:, None], cells[:, LABEL_AT:]], axis=1
            )
            lines = [",".join(row) + "\n" for row in table.tolist()]
            for row in lines:
                out.write(row)
                written += len(row)
                left -= 1
                if written >= size_bytes or left == 0:
                    break
    tmp.replace(path)
    return path


def cached_csv(
    size_bytes: int,
    seed: int = 0,
    directory: Path | None = None,
    features: int = FEATURES,
    rows: int | None = None,
) -> Path:
    """The synthetic CSV of this size (or row count), written once into a temporary cache."""
    root = directory or Path(
        os.environ.get("DROPFIT_BENCH_DATA", Path(tempfile.gettempdir()) / "dropfit-bench")
    )
    root.mkdir(parents=True, exist_ok=True)
    shape = "" if (features, rows) == (FEATURES, None) else f"-{features}x{rows}"
    path = root / f"synthetic-v{_VERSION}-{size_bytes}-{seed}{shape}.csv"
    if not path.exists():
        write_csv(path, size_bytes, seed, features, rows)
    return path
