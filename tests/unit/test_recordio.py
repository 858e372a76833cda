"""recordIO-protobuf framing and records (dropfit.recordio); the SDK comparison is tests/sdk."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from dropfit import recordio
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class Trickle(io.RawIOBase):
    """A pipe that hands out at most three bytes per read (as a FIFO may)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 9)),
        elements=st.floats(width=32, allow_nan=False),
    )
)
def test_encoded_rows_decode_to_the_same_rows_and_labels(rows: np.ndarray) -> None:
    labels = np.arange(rows.shape[0], dtype=np.float32)

    features, decoded_labels = recordio.dense_rows(
        recordio.decode(Trickle(recordio.encode_dense(rows, labels)))  # type: ignore[arg-type]
    )

    np.testing.assert_array_equal(features, rows)
    assert decoded_labels is not None
    np.testing.assert_array_equal(decoded_labels, labels)


def test_every_record_is_padded_to_four_bytes_behind_its_magic_and_length() -> None:
    body = recordio.encode_dense(np.array([[1.0]], dtype=np.float32))

    magic, length = struct.unpack("<II", body[:8])
    assert magic == recordio.MAGIC
    assert len(body) == 8 + length + (-length % 4)
    assert len(body) % 4 == 0


def test_a_record_split_at_the_magic_number_is_joined_with_it_as_mxnet_reads_it() -> None:
    payload = recordio.encode_dense(np.array([[2.0, 3.0]], dtype=np.float32))[8:]
    payload = payload[: payload.index(b"\x00\x00\x00\x40")]  # cut before 2.0's bytes, aligned
    whole = recordio.frame(payload)[8:]
    first, last = whole[:4], whole[4:]
    magic = struct.pack("<I", recordio.MAGIC)

    def part(flag: int, data: bytes) -> bytes:
        return (
            struct.pack("<II", recordio.MAGIC, flag << 29 | len(data))
            + data
            + b"\0" * (-len(data) % 4)
        )

    stream = io.BytesIO(part(1, first) + part(3, last) + recordio.frame(b"next"))

    assert list(recordio.unframe(stream)) == [first + magic + last, b"next"]


def test_a_stream_that_is_not_recordio_is_refused_with_the_byte_and_the_magic_expected() -> None:
    with pytest.raises(recordio.RecordIOError, match=r"byte 0: expected recordIO's magic"):
        recordio.decode(b"5.1,3.5,1.4,0.2\n")


def test_a_stream_cut_inside_a_record_says_where() -> None:
    body = recordio.encode_dense(np.ones((2, 3), dtype=np.float32))

    with pytest.raises(recordio.RecordIOError, match=r"the stream ends inside a record"):
        recordio.decode(body[:-5])


def test_records_of_different_widths_are_refused_naming_the_record() -> None:
    body = recordio.encode_dense(np.ones((1, 3), dtype=np.float32))
    body += recordio.encode_dense(np.ones((1, 2), dtype=np.float32))

    with pytest.raises(recordio.RecordIOError, match=r"record 2 has 2 features; record 1 has 3"):
        recordio.dense_rows(recordio.decode(body))


def test_features_that_are_not_a_matrix_are_refused() -> None:
    with pytest.raises(recordio.RecordIOError, match=r"must be a matrix"):
        recordio.encode_dense(np.ones(3, dtype=np.float32))
