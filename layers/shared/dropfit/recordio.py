"""SageMaker's recordIO-protobuf (application/x-recordio-protobuf): encode rows, decode records."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

CONTENT_TYPE = "application/x-recordio-protobuf"

# MXNet's recordIO framing, which the SDK's ``_write_recordio`` writes: a little-endian magic
# number, a 32-bit word holding the payload length (low 29 bits) and a continuation flag (high 3
# bits), the payload, then zero padding to a multiple of 4 bytes.
MAGIC = 0xCED7230A
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_HEADER = struct.Struct("<II")
# cflag: 0 a whole record; 1 its first part, 2 a middle part, 3 the last part. MXNet cuts a record
# where its payload holds the magic number (4-byte aligned) and drops it: readers put it back.
_WHOLE, _FIRST, _MIDDLE, _LAST = 0, 1, 2, 3

# The SDK's record.proto (package aialgs.data): field numbers and protobuf wire types.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_RECORD_FEATURES, _RECORD_LABEL, _RECORD_UID, _RECORD_METADATA, _RECORD_CONFIGURATION = (
    1,
    2,
    3,
    4,
    5,
)
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_TENSOR_VALUES, _TENSOR_KEYS, _TENSOR_SHAPE = 1, 2, 3
# Value's oneof: float32_tensor = 2, float64_tensor = 3, int32_tensor = 7, bytes = 9.
_TENSOR_KINDS: dict[int, np.dtype] = {2: np.dtype("<f4"), 3: np.dtype("<f8"), 7: np.dtype(np.int32)}
_VALUE_FLOAT32 = 2
_VALUES_KEY = "values"


class RecordIOError(ValueError):
    """The bytes are not recordIO-protobuf as SageMaker's built-in algorithms read it."""


@dataclass(frozen=True)
class Tensor:
    """One ``Value`` of a record: dense when ``keys`` is empty, else sparse over ``shape``."""

    values: np.ndarray
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    shape: tuple[int, ...] = ()

    def dense(self) -> np.ndarray:
        """The tensor as a flat dense vector (a sparse one laid out over its last ``shape``)."""
        width = int(np.prod(self.shape)) if self.shape else self.values.size
        if self.keys.size == 0 and self.values.size == width:
            return self.values
        if not self.shape:
            raise RecordIOError("a sparse tensor (keys given) has no shape to lay its values over")
        if self.keys.size != self.values.size:
            raise RecordIOError(
                f"a sparse tensor has {self.keys.size} keys for {self.values.size} values"
            )
        if self.keys.size and int(self.keys.max()) >= width:
            raise RecordIOError(
                f"a sparse key {int(self.keys.max())} is outside shape {self.shape}"
            )
        out = np.zeros(width, dtype=self.values.dtype)
        out[self.keys.astype(np.int64)] = self.values
        return out


@dataclass(frozen=True)
class Record:
    """One ``aialgs.data.Record``: named feature and label tensors and its optional strings."""

    features: dict[str, Tensor]
    label: dict[str, Tensor] = field(default_factory=dict)
    uid: str | None = None
    metadata: str | None = None
    configuration: str | None = None


# ------------------------------------------------------------------ framing


def frame(payload: bytes) -> bytes:
    """One recordIO record holding ``payload``, as the SDK's ``_write_recordio`` writes it."""
    length = len(payload)
    if length > _LENGTH_MASK:
        raise RecordIOError(f"a record of {length} bytes exceeds recordIO's {_LENGTH_MASK}")
    return _HEADER.pack(MAGIC, length) + payload + b"\0" * (-length % 4)


def unframe(stream: BinaryIO) -> Iterator[bytes]:
    """Each record's payload from a recordIO stream (a file or a pipe), joining split records."""
    parts: list[bytes] = []
    offset = 0
    while True:
        header = _read_exactly(stream, _HEADER.size, offset, allow_end=not parts)
        if header is None:
            return
        magic, word = _HEADER.unpack(header)
        if magic != MAGIC:
            raise RecordIOError(
                f"byte {offset}: expected recordIO's magic number 0x{MAGIC:08x}, "
                f"found 0x{magic:08x}"
            )
        flag, length = word >> _LENGTH_BITS, word & _LENGTH_MASK
        padded = length + (-length % 4)
        body = _read_exactly(stream, padded, offset + _HEADER.size, allow_end=False)
        assert body is not None
        offset += _HEADER.size + padded
        if flag in (_WHOLE, _FIRST) and parts:
            raise RecordIOError(f"byte {offset}: a split record ends without its last part")
        if flag in (_MIDDLE, _LAST) and not parts:
            raise RecordIOError(f"byte {offset}: a record part comes without its first part")
        parts.append(body[:length])
        if flag in (_WHOLE, _LAST):
            yield struct.pack("<I", MAGIC).join(parts)
            parts = []


def _read_exactly(stream: BinaryIO, size: int, offset: int, *, allow_end: bool) -> bytes | None:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got == 0 and allow_end:
        return None
    if got < size:
        raise RecordIOError(f"byte {offset}: the stream ends inside a record ({got} of {size})")
    return b"".join(chunks)


# ------------------------------------------------------------------ encoding


def encode_dense(features: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """Rows of float32 features (and a float32 label each) as the SDK's
    ``write_numpy_to_dense_tensor`` writes float32 arrays, byte for byte."""
    matrix = np.asarray(features, dtype="<f4")
    if matrix.ndim != 2:
        raise RecordIOError(f"features must be a matrix (rows x columns), got {matrix.ndim}-D")
    if matrix.shape[1] == 0:
        raise RecordIOError("features must have at least one column")
    targets = None if labels is None else np.asarray(labels, dtype="<f4")
    if targets is not None and targets.shape != (matrix.shape[0],):
        raise RecordIOError(f"{targets.shape} labels for {matrix.shape[0]} rows")
    out = bytearray()
    for index, row in enumerate(matrix):
        payload = _map_entry(_RECORD_FEATURES, _float32_value(row.tobytes()))
        if targets is not None:
            payload += _map_entry(
                _RECORD_LABEL, _float32_value(targets[index : index + 1].tobytes())
            )
        out += frame(payload)
    return bytes(out)


def encode_record(
    features: Mapping[str, np.ndarray], label: Mapping[str, np.ndarray] | None = None
) -> bytes:
    """One framed record of named float32 tensors (an inference answer: its label map only)."""
    payload = b"".join(
        _map_entry(_RECORD_FEATURES, _float32_value(_float32_bytes(value)), key)
        for key, value in features.items()
    )
    payload += b"".join(
        _map_entry(_RECORD_LABEL, _float32_value(_float32_bytes(value)), key)
        for key, value in (label or {}).items()
    )
    return frame(payload)


def _float32_bytes(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").reshape(-1).tobytes()


def _float32_value(packed: bytes) -> bytes:
    tensor = _field(_TENSOR_VALUES, packed) if packed else b""
    return _field(_VALUE_FLOAT32, tensor)


def _map_entry(number: int, value: bytes, key: str = _VALUES_KEY) -> bytes:
    return _field(number, _field(_ENTRY_KEY, key.encode()) + _field(_ENTRY_VALUE, value))


def _field(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(body)) + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ------------------------------------------------------------------ decoding


def decode(data: bytes | BinaryIO) -> list[Record]:
    """Every record of a recordIO-protobuf body or stream (what ``read_records`` returns)."""
    return list(iter_records(data))


def iter_records(data: bytes | BinaryIO) -> Iterator[Record]:
    """The records of a recordIO-protobuf body or stream, one at a time."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    for index, payload in enumerate(unframe(stream)):
        try:
            yield parse_record(payload)
        except RecordIOError as error:
            raise RecordIOError(f"record {index + 1}: {error}") from None


def dense_rows(records: Iterable[Record]) -> tuple[np.ndarray, np.ndarray | None]:
    """The records' ``values`` features as a float32 matrix, and their labels when all have one."""
    rows: list[np.ndarray] = []
    labels: list[float] = []
    for index, record in enumerate(records):
        tensor = record.features.get(_VALUES_KEY)
        if tensor is None:
            raise RecordIOError(f"record {index + 1} has no 'values' feature tensor")
        row = tensor.dense().astype(np.float32)
        if rows and row.size != rows[0].size:
            raise RecordIOError(
                f"record {index + 1} has {row.size} features; record 1 has {rows[0].size}"
            )
        rows.append(row)
        label = record.label.get(_VALUES_KEY)
        if label is not None and label.values.size:
            labels.append(float(label.values[0]))
    matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    if not labels:
        return matrix, None
    if len(labels) != len(rows):
        raise RecordIOError(f"{len(labels)} of {len(rows)} records have a label")
    return matrix, np.asarray(labels, dtype=np.float32)


def parse_record(payload: bytes) -> Record:
    """One serialized ``aialgs.data.Record``."""
    features: dict[str, Tensor] = {}
    label: dict[str, Tensor] = {}
    strings: dict[int, str] = {}
    for number, wire, value in _fields(payload):
        if number in (_RECORD_FEATURES, _RECORD_LABEL) and wire == _LEN:
            assert isinstance(value, bytes)
            key, tensor = _parse_entry(value)
            (features if number == _RECORD_FEATURES else label)[key] = tensor
        elif number in (_RECORD_UID, _RECORD_METADATA, _RECORD_CONFIGURATION) and wire == _LEN:
            assert isinstance(value, bytes)
            strings[number] = value.decode("utf-8")
    return Record(
        features=features,
        label=label,
        uid=strings.get(_RECORD_UID),
        metadata=strings.get(_RECORD_METADATA),
        configuration=strings.get(_RECORD_CONFIGURATION),
    )


def _parse_entry(payload: bytes) -> tuple[str, Tensor]:
    key = ""
    tensor = Tensor(values=np.zeros(0, dtype=np.float32))
    for number, wire, value in _fields(payload):
        if wire != _LEN:
            continue
        assert isinstance(value, bytes)
        if number == _ENTRY_KEY:
            key = value.decode("utf-8")
        elif number == _ENTRY_VALUE:
            tensor = _parse_value(value)
    return key, tensor


def _parse_value(payload: bytes) -> Tensor:
    tensor: Tensor | None = None
    for number, wire, value in _fields(payload):
        if number == 9:
            raise RecordIOError("a Bytes value (raw data such as images) is not a numeric tensor")
        dtype = _TENSOR_KINDS.get(number)
        if dtype is not None and wire == _LEN:
            assert isinstance(value, bytes)
            tensor = _parse_tensor(value, dtype)
    if tensor is None:
        raise RecordIOError("a Value holds no float32, float64 or int32 tensor")
    return tensor


def _parse_tensor(payload: bytes, dtype: np.dtype) -> Tensor:
    values: list[np.ndarray] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire, value in _fields(payload):
        if number == _TENSOR_VALUES:
            values.append(_tensor_values(wire, value, dtype))
        elif number in (_TENSOR_KEYS, _TENSOR_SHAPE):
            target = keys if number == _TENSOR_KEYS else shape
            if wire == _LEN:
                assert isinstance(value, bytes)
                target.extend(_packed_varints(value))
            elif wire == _VARINT:
                assert isinstance(value, int)
                target.append(value)
    joined = np.concatenate(values) if values else np.zeros(0, dtype=dtype)
    return Tensor(values=joined, keys=np.asarray(keys, dtype=np.uint64), shape=tuple(shape))


def _tensor_values(wire: int, value: bytes | int, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "i":  # int32 values are varints, packed or one by one (two's complement)
        ints = _packed_varints(value) if isinstance(value, bytes) else [value]
        return np.asarray(ints, dtype=np.uint64).astype(np.int64).astype(np.int32)
    if wire == _LEN:
        assert isinstance(value, bytes)
        if len(value) % dtype.itemsize:
            raise RecordIOError(f"packed values of {len(value)} bytes are not {dtype} numbers")
        return np.frombuffer(value, dtype=dtype)
    assert isinstance(value, int)
    size = "<I" if dtype.itemsize == 4 else "<Q"
    return np.frombuffer(struct.pack(size, value), dtype=dtype)


def _fields(payload: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    position, end = 0, len(payload)
    while position < end:
        tag, position = _read_varint(payload, position)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, position = _read_varint(payload, position)
            yield number, wire, value
        elif wire == _LEN:
            length, position = _read_varint(payload, position)
            if position + length > end:
                raise RecordIOError("a protobuf field runs past the end of its message")
            yield number, wire, payload[position : position + length]
            position += length
        elif wire in (_FIXED32, _FIXED64):
            size = 4 if wire == _FIXED32 else 8
            if position + size > end:
                raise RecordIOError("a protobuf field runs past the end of its message")
            yield number, wire, int.from_bytes(payload[position : position + size], "little")
            position += size
        else:
            raise RecordIOError(f"protobuf wire type {wire} is not one record.proto uses")


def _packed_varints(payload: bytes) -> list[int]:
    out: list[int] = []
    position = 0
    while position < len(payload):
        value, position = _read_varint(payload, position)
        out.append(value)
    return out


def _read_varint(payload: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(payload):
            raise RecordIOError("a protobuf varint runs past the end of its message")
        byte = payload[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise RecordIOError("a protobuf varint is longer than 64 bits")
