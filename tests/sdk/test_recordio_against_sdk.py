"""dropfit.recordio against the sagemaker SDK v2's own encoder and decoder, byte for byte."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dropfit import recordio

from tests.sdk.venv import run_sdk

# argv: arrays.npz, an output folder, then .rec files. Writes <name>.rec, the SDK's encoding of
# each array set, and decoded.json: each given .rec file read back with the SDK's decoder
# (RecordDeserializer, i.e. read_records).
SDK_CODEC = r"""
import io, json, sys
import numpy as np
import scipy.sparse
from sagemaker.amazon.common import (
    RecordDeserializer, write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor,
)

arrays = np.load(sys.argv[1])
out = sys.argv[2]
for name in sorted({k.split(":")[0] for k in arrays.files}):
    features = arrays[name + ":x"]
    labels = arrays[name + ":y"] if name + ":y" in arrays.files else None
    buffer = io.BytesIO()
    if name.startswith("sparse"):
        write_spmatrix_to_sparse_tensor(buffer, scipy.sparse.csr_matrix(features), labels)
    else:
        write_numpy_to_dense_tensor(buffer, features, labels)
    open(f"{out}/{name}.rec", "wb").write(buffer.getvalue())

def tensor(value):
    kind = value.WhichOneof("value")
    t = getattr(value, kind)
    return {"kind": kind, "values": list(t.values), "keys": list(t.keys), "shape": list(t.shape)}

decoded = {}
for path in sys.argv[3:]:
    body = open(path, "rb").read()
    records = RecordDeserializer().deserialize(io.BytesIO(body), "application/x-recordio-protobuf")
    decoded[path] = [
        {
            "features": {k: tensor(v) for k, v in r.features.items()},
            "label": {k: tensor(v) for k, v in r.label.items()},
        }
        for r in records
    ]
open(f"{out}/decoded.json", "w").write(json.dumps(decoded))
"""

KIND = {"float32": "float32_tensor", "float64": "float64_tensor", "int32": "int32_tensor"}
# Widths where the protobuf lengths' varints grow: payloads padded by 0, 2 and 3 bytes (a dense
# float32 record never needs 1 byte of padding).
FLOAT32_SETS = ["iris", "unlabelled", "extremes", "magic", "narrow", "w29", "w30", "w31"]
SDK_SETS = ["iris", "doubles", "ints", "sparse", "extremes", "magic"]


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    iris_like = rng.normal(5, 2, size=(112, 4)).astype(np.float32)
    extremes = np.array(
        [[0.0, -0.0, 1e-45, -3.4e38], [np.inf, -np.inf, 1.5, 7.0]], dtype=np.float32
    )
    # A value whose float32 bytes are recordIO's magic number, 4-byte aligned in the payload.
    magic = np.frombuffer(np.uint32(recordio.MAGIC).tobytes(), dtype=np.float32)[0]
    sparse = np.zeros((5, 40), dtype=np.float32)
    sparse[0, 3], sparse[2, 39], sparse[4, 0] = 1.5, -2.0, 3.25
    return {
        "iris:x": iris_like,
        "iris:y": rng.integers(0, 3, size=112).astype(np.float32),
        "unlabelled:x": rng.random((7, 300)).astype(np.float32),
        "extremes:x": extremes,
        "extremes:y": np.array([-1.0, 2.5e9], dtype=np.float32),
        "magic:x": np.full((2, 3), magic, dtype=np.float32),
        "magic:y": np.array([magic, 0.0], dtype=np.float32),
        "narrow:x": rng.random((3, 1)).astype(np.float32),
        "w29:x": rng.random((3, 29)).astype(np.float32),
        "w30:x": rng.random((2, 30)).astype(np.float32),
        "w30:y": np.ones(2, dtype=np.float32),
        "w31:x": rng.random((2, 31)).astype(np.float32),
        "doubles:x": rng.normal(size=(4, 6)),
        "doubles:y": rng.normal(size=4),
        "ints:x": rng.integers(-(2**31), 2**31 - 1, size=(3, 5)),
        "ints:y": np.array([-1, 0, 2**31 - 1]),
        "sparse:x": sparse,
        "sparse:y": np.arange(5, dtype=np.float32),
    }


@pytest.fixture(scope="module")
def sdk_run(sdk_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One SDK run: its encodings of every set, and its decoding of ours and of its own."""
    folder = tmp_path_factory.mktemp("recordio")
    arrays = _arrays()
    np.savez(folder / "arrays.npz", **arrays)
    ours = folder / "ours"
    ours.mkdir()
    for name in FLOAT32_SETS:
        body = recordio.encode_dense(arrays[f"{name}:x"], arrays.get(f"{name}:y"))
        (ours / f"{name}.rec").write_bytes(body)
    # The SDK writes its own files first, then reads the paths given: ours and its own.
    to_read = [ours / f"{name}.rec" for name in FLOAT32_SETS]
    to_read += [folder / f"{name}.rec" for name in SDK_SETS]
    done = run_sdk(SDK_CODEC, str(folder / "arrays.npz"), str(folder), *map(str, to_read))
    assert done.returncode == 0, done.stderr
    return {
        "arrays": arrays,
        "folder": folder,
        "ours": ours,
        "decoded": json.loads((folder / "decoded.json").read_text()),
    }


def test_dense_float32_rows_encode_exactly_as_the_sdk_and_its_decoder_reads_them(
    sdk_run: dict[str, Any],
) -> None:
    paddings: set[int] = set()
    for name in FLOAT32_SETS:
        _check_float32_set(sdk_run, name, paddings)
    assert paddings == {0, 2, 3}


def _check_float32_set(sdk_run: dict[str, Any], name: str, paddings: set[int]) -> None:
    ours = (sdk_run["ours"] / f"{name}.rec").read_bytes()

    assert ours == (sdk_run["folder"] / f"{name}.rec").read_bytes()
    paddings.add(-struct.unpack("<I", ours[4:8])[0] % 4)
    records = sdk_run["decoded"][str(sdk_run["ours"] / f"{name}.rec")]
    features = [record["features"]["values"] for record in records]
    assert {feature["kind"] for feature in features} == {"float32_tensor"}
    np.testing.assert_array_equal(
        np.array([f["values"] for f in features], dtype=np.float32), sdk_run["arrays"][f"{name}:x"]
    )


@pytest.mark.parametrize("name", SDK_SETS)
def test_what_the_sdk_writes_decodes_to_its_tensors(sdk_run: dict[str, Any], name: str) -> None:
    written = sdk_run["folder"] / f"{name}.rec"
    sdk_records = sdk_run["decoded"][str(written)]

    records = recordio.decode(written.read_bytes())

    assert len(records) == len(sdk_records)
    for ours, theirs in zip(records, sdk_records, strict=True):
        for part in ("features", "label"):
            mine = getattr(ours, part)
            assert sorted(mine) == sorted(theirs[part])
            for key, tensor in theirs[part].items():
                assert KIND[str(mine[key].values.dtype)] == tensor["kind"]
                np.testing.assert_array_equal(
                    mine[key].values, np.array(tensor["values"], dtype=mine[key].values.dtype)
                )
                assert mine[key].keys.tolist() == tensor["keys"]
                assert list(mine[key].shape) == tensor["shape"]
    features, labels = recordio.dense_rows(records)
    arrays = sdk_run["arrays"]
    np.testing.assert_array_equal(features, arrays[f"{name}:x"].astype(np.float32))
    assert labels is not None
    np.testing.assert_array_equal(labels, arrays[f"{name}:y"].astype(np.float32))
