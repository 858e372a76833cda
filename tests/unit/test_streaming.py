"""The streaming formatter: scikit-learn's split, whatever the size, block size, engine or parts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from dropfit import csvscan, csvsource, plaincsv, plainrows
from dropfit.csvsource import bytes_source
from dropfit.dataset import TrainLayout, format_dataset, plan_dataset, train_object_names
from dropfit.errors import InvalidUpload
from dropfit.options import UploadOptions
from sklearn.model_selection import train_test_split

from bench.synthetic import cached_csv
from tests.conftest import ROOT

CLASSES = ["setosa", "versicolor", "virginica"]


def make_csv(n_rows: int, label_at: int, kind: str, seed: int = 0, n_features: int = 4) -> bytes:
    """Random decimal features (1 to 4 decimals) and a label column at ``label_at``."""
    rng = np.random.default_rng(seed)
    decimals = rng.integers(1, 5, (n_rows, n_features))
    features = [
        [repr(round(float(v), int(d))) for v, d in zip(row, places, strict=True)]
        for row, places in zip(rng.normal(0, 50, (n_rows, n_features)), decimals, strict=True)
    ]
    if kind == "text":
        labels = [CLASSES[i] for i in rng.permutation(np.arange(n_rows) % 3)]
    elif kind == "integer":
        labels = [str(i) for i in rng.permutation(np.arange(n_rows) % 4)]
    else:
        labels = [f"{v:.3f}" for v in rng.normal(0, 1, n_rows)]
    names = [f"x{j}" for j in range(n_features)]
    names.insert(label_at, "target")
    lines = [",".join(names)]
    for row, label in zip(features, labels, strict=True):
        lines.append(",".join([*row[:label_at], label, *row[label_at:]]))
    return ("\n".join(lines) + "\n").encode()


def sklearn_split(data: bytes) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The tutorial by hand, rows put back in upload order."""
    frame = pd.read_csv(io.BytesIO(data))
    if not pd.api.types.is_numeric_dtype(frame["target"]):
        frame["target"] = frame["target"].map({c: i for i, c in enumerate(CLASSES)})
    frame = frame[["target", *[c for c in frame.columns if c != "target"]]]
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    return train.sort_index().to_numpy(np.float64), test.sort_index().to_numpy(np.float64)


def table(channel: bytes) -> npt.NDArray[np.float64]:
    return np.loadtxt(io.BytesIO(channel), delimiter=",", ndmin=2)


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes | memoryview) -> None:
        assert not self.closed
        self.data += data

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("n_rows", [9, 150, 4_000, 30_000])
@pytest.mark.parametrize(("label_at", "kind"), [(4, "text"), (2, "integer"), (0, "fractional")])
def test_channels_hold_sklearns_split_in_upload_order(
    n_rows: int, label_at: int, kind: str
) -> None:
    data = make_csv(n_rows, label_at, kind, seed=n_rows)
    expected_train, expected_test = sklearn_split(data)

    formatted = format_dataset(data, UploadOptions(label="target"), default_k=1)

    np.testing.assert_array_equal(table(formatted.train_csv), expected_train)
    np.testing.assert_array_equal(table(formatted.test_csv), expected_test)
    regressor = kind == "fractional"
    assert formatted.metadata.predictor_type == ("regressor" if regressor else "classifier")


def test_numbers_keep_the_text_they_were_uploaded_with() -> None:
    data = b"a,b,label\n" + b"".join(b"1.10,-0.50,x\n2,3e2,y\n" for _ in range(4))

    formatted = format_dataset(data, UploadOptions(), default_k=1)

    rows = (formatted.train_csv + formatted.test_csv).decode().splitlines()
    assert sorted(set(rows)) == ["0,1.10,-0.50", "1,2,3e2"]


@pytest.mark.parametrize("block_bytes", [7, 64, 1000])
def test_block_boundaries_change_nothing(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    data = make_csv(500, 2, "text", seed=7)
    expected = format_dataset(data, UploadOptions(), default_k=1)
    monkeypatch.setattr(plaincsv, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(plainrows, "PIECE_BYTES", block_bytes)
    monkeypatch.setattr(csvscan, "_CHUNK_CELLS", block_bytes)

    formatted = format_dataset(data, UploadOptions(), default_k=1)

    assert formatted == expected


def test_r_style_quotes_crlf_and_blank_lines_stay_on_the_fast_engine(
    reference_engine_calls: list[str],
) -> None:
    data = make_csv(300, 4, "text", seed=3)
    lines = data.decode().splitlines()
    quoted = ['"' + '","'.join(lines[0].split(",")) + '"']
    for line in lines[1:]:
        *features, label = line.split(",")
        quoted.append(",".join([*features, f'"{label}"']))
    exported = ("\r\n".join(quoted) + "\r\n\r\n").encode()

    formatted = format_dataset(exported, UploadOptions(), default_k=1)

    assert reference_engine_calls == []
    assert formatted == format_dataset(data, UploadOptions(), default_k=1)


def test_spaces_around_numbers_go_to_the_reference_engine_with_the_same_values(
    reference_engine_calls: list[str],
) -> None:
    data = make_csv(300, 4, "text", seed=4)
    spaced = data.replace(b",", b", ")

    formatted = format_dataset(spaced, UploadOptions(), default_k=1)

    assert reference_engine_calls == ["reference"]
    assert formatted == format_dataset(data, UploadOptions(), default_k=1)


def test_numbers_that_are_not_plain_decimal_are_written_in_shortest_form() -> None:
    data = b"a,label\n" + b"".join(b" +1.50 ,x\n 2 ,y\n" for _ in range(4))

    formatted = format_dataset(data, UploadOptions(), default_k=1)

    rows = set((formatted.train_csv + formatted.test_csv).decode().splitlines())
    assert rows == {"0,+1.50", "1,2"}  # plain decimal text, stripped, is kept as uploaded


# --- the training channel in parts --------------------------------------------------------


def _write_parts(data: bytes, layout: TrainLayout) -> tuple[list[Collect], Collect, int]:
    plan = plan_dataset(bytes_source(data), UploadOptions(), 1, layout)
    train = [Collect() for _ in range(plan.train_parts)]
    test = Collect()
    plan.write(train, test)
    return train, test, plan.train_parts


def test_a_large_training_channel_is_cut_into_equal_parts_a_multiple_of_the_instances() -> None:
    data = make_csv(3_000, 4, "text", seed=5)
    whole = format_dataset(data, UploadOptions(), default_k=1)

    train, test, parts = _write_parts(data, TrainLayout(instance_count=3, part_bytes=20_000))

    assert parts > 3 and parts % 3 == 0
    rows = [bytes(part.data).count(b"\n") for part in train]
    assert max(rows) - min(rows) <= 1
    assert all(part.closed for part in train) and test.closed
    assert b"".join(part.data for part in train) == whole.train_csv
    assert bytes(test.data) == whole.test_csv


def test_every_instance_gets_an_object_however_small_the_data() -> None:
    _, _, parts = _write_parts(make_csv(40, 4, "text"), TrainLayout(instance_count=2))

    assert parts == 2


def test_part_names() -> None:
    assert train_object_names(1) == ["train.csv"]
    assert train_object_names(3) == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]


def test_fewer_training_rows_than_instances_is_refused() -> None:
    with pytest.raises(InvalidUpload) as error:
        plan_dataset(bytes_source(make_csv(12, 4, "text")), UploadOptions(), 1, TrainLayout(16))

    assert error.value.message == (
        "The training set has 9 rows, fewer than the 16 training instances; each instance needs "
        "at least one. Upload more rows."
    )


def test_a_sample_size_smaller_than_the_instance_count_is_refused() -> None:
    options = UploadOptions(sample_size=2)
    with pytest.raises(InvalidUpload) as error:
        plan_dataset(bytes_source(make_csv(40, 4, "text")), options, 1, TrainLayout(3))

    assert error.value.message == (
        "Option sample_size=2 is smaller than the 3 training instances; each instance samples "
        "its share of it."
    )


def test_sample_size_stays_the_total_over_instances() -> None:
    plan = plan_dataset(
        bytes_source(make_csv(400, 4, "text")), UploadOptions(sample_size=100), 1, TrainLayout(4)
    )

    assert plan.metadata.hyperparameters()["sample_size"] == "100"


# --- reading ---------------------------------------------------------------------------


def test_a_utf8_error_is_placed_in_the_file_even_across_blocks_and_after_a_bom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plaincsv, "BLOCK_BYTES", 5)
    data = b"\xef\xbb\xbfa,b\n" + "é,1\n".encode() * 3 + b"\xc3(,1\n"

    with pytest.raises(InvalidUpload) as error:
        format_dataset(data, UploadOptions(), default_k=1)

    offset = data.index(b"\xc3(")
    assert error.value.message == (
        f"The file is not UTF-8 text: byte 0xc3 at offset {offset} cannot be decoded. "
        "Save the CSV as UTF-8."
    )


def test_a_reader_returns_full_reads_from_a_stream_of_short_ones() -> None:
    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            return super().read(min(3, size if size is not None and size >= 0 else 3))

    reader = csvsource.ValidatedReader(Trickle(b"x" * 100))

    assert [len(reader.read(40)), len(reader.read(40)), len(reader.read(40))] == [40, 40, 20]


# --- memory --------------------------------------------------------------------------------

_PEAK = textwrap.dedent(
    """
    import json, sys
    from dropfit.dataset import plan_dataset
    from dropfit.options import UploadOptions

    class Discard:
        def write(self, data): pass
        def close(self): pass

    def peak_mib():
        # VmHWM: this process's peak RSS (ru_maxrss would include the parent's, from fork)
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    path = sys.argv[1]
    before = peak_mib()
    plan = plan_dataset(lambda: open(path, "rb"), UploadOptions(), 1)
    plan.write([Discard() for _ in range(plan.train_parts)], Discard())
    print(json.dumps({"before": before, "after": peak_mib(), "rows": plan.metadata.n_rows}))
    """
)


def _peak(path: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path)],
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    peak: dict[str, float] = json.loads(result.stdout)
    return peak


def test_memory_does_not_grow_with_the_size_of_the_upload() -> None:
    # Both span several 8 MiB blocks; written once into a temporary cache directory.
    small = _peak(cached_csv(20_000_000))
    large = _peak(cached_csv(80_000_000))

    assert large["rows"] > 3 * small["rows"]
    # 60 MB more data: a few bytes per row more (the split mask, the label ids) and the
    # allocator's slack, far from the 60 MB that holding the upload would add.
    assert large["after"] - small["after"] < 40, (small, large)
    # About 80 MiB for the blocks in flight; reading 80 MB with pandas alone takes 500 MiB.
    assert large["after"] - large["before"] < 120, large
