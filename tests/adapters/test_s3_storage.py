"""The S3 adapter under moto: the same object version on every read, all-or-nothing writes."""

from __future__ import annotations

from typing import Any

import pytest
from dropfit.aws.s3 import Storage
from dropfit.errors import InvalidUpload

from .conftest import BUCKET, versioned

MiB = 1024 * 1024
PART = 5 * MiB  # S3's (and moto's) smallest part but the last


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_every_read_sees_the_announced_version_even_after_an_overwrite(s3: Any) -> None:
    versioned(s3)
    first = s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v1", Metadata={"k": "3"})

    upload = Storage(s3).open_upload(BUCKET, "incoming/a.csv", first["VersionId"])
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v2")

    assert upload.metadata == {"k": "3"}
    assert [upload.open().read() for _ in range(3)] == [b"v1", b"v1", b"v1"]


def test_an_unversioned_object_replaced_between_passes_is_a_reason(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v1")
    upload = Storage(s3).open_upload(BUCKET, "incoming/a.csv", None)
    assert upload.open().read() == b"v1"
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v2")

    with pytest.raises(InvalidUpload) as error:
        upload.open().read()

    assert error.value.message == (
        "incoming/a.csv was replaced while it was being read; the new upload is processed as a "
        "run of its own."
    )


def test_a_deleted_object_is_a_reason_that_names_its_key_but_not_the_bucket(s3: Any) -> None:
    with pytest.raises(InvalidUpload) as error:
        Storage(s3).open_upload(BUCKET, "incoming/gone.csv", None)

    assert error.value.message == (
        "incoming/gone.csv was deleted before it could be read; upload it again."
    )


def test_reads_come_in_full_blocks_and_end_empty(s3: Any) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: several read-ahead blocks
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=data)
    body = Storage(s3).open_upload(BUCKET, "incoming/a.csv", None).open()

    chunks = [body.read(3 * MiB) for _ in range(5)]
    body.close()

    assert [len(c) for c in chunks] == [3 * MiB, 3 * MiB, 3 * MiB, len(data) - 9 * MiB, 0]
    assert b"".join(chunks) == data


def test_a_large_object_is_uploaded_in_parts_and_appears_on_commit(s3: Any) -> None:
    storage = Storage(s3, part_bytes=PART)
    data = b"1,2.5,3\n" * (12 * MiB // 8)  # three parts, the last one small

    with storage.batch(BUCKET, "text/csv") as batch:
        writer = batch.writer("datasets/big.csv")
        for start in range(0, len(data), 3 * MiB):
            writer.write(memoryview(data)[start : start + 3 * MiB])
        writer.close()
        assert _keys(s3) == []  # nothing visible before the batch commits
        small = batch.writer("datasets/small.csv")
        small.write(b"0,1\n")

    assert _keys(s3) == ["datasets/big.csv", "datasets/small.csv"]
    assert s3.get_object(Bucket=BUCKET, Key="datasets/big.csv")["Body"].read() == data
    head = s3.head_object(Bucket=BUCKET, Key="datasets/big.csv")
    assert (head["ContentType"], head["ContentLength"]) == ("text/csv", len(data))
    assert s3.get_object(Bucket=BUCKET, Key="datasets/small.csv")["Body"].read() == b"0,1\n"


def test_a_failure_mid_batch_leaves_no_object_and_no_open_upload(s3: Any) -> None:
    storage = Storage(s3, part_bytes=PART)

    with pytest.raises(RuntimeError), storage.batch(BUCKET, "text/csv") as batch:
        batch.writer("datasets/train/part-00000.csv").write(b"x" * (2 * PART))
        batch.writer("datasets/test/test.csv").write(b"y")
        raise RuntimeError("the formatter failed")

    assert _keys(s3) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
