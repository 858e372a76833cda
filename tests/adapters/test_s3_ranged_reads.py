"""Reading an upload as parallel ranged GETs under moto: the announced version's bytes, exactly and
in order, with a bounded window of parts, and the same reasons as a single stream gave."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from dropfit.aws.s3 import Storage
from dropfit.errors import InvalidUpload

from .conftest import BUCKET, versioned

KEY = "incoming/a.csv"
PART = 1000
WINDOW = 3
SIZES = [0, 1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 1, WINDOW * PART + 7, 11 * PART + 3]


def _storage(s3: Any) -> Storage:
    return Storage(s3, read_part_bytes=PART, read_window=WINDOW)


def _data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


class Ranges:
    """The Range of every GetObject the client sends, in the order sent; an optional delay
    makes earlier parts answer later, so parts complete out of order."""

    def __init__(self, s3: Any, slower_first: bool = False) -> None:
        self.sent: list[str | None] = []
        self.answered: list[int] = []  # the first byte of each part, as answered
        self._lock = threading.Lock()
        self._slower_first = slower_first
        s3.meta.events.register("before-call.s3.GetObject", self._record)
        s3.meta.events.register("after-call.s3.GetObject", self._answered)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        byte_range = params.get("headers", {}).get("Range")
        with self._lock:
            self.sent.append(byte_range)
        if self._slower_first and byte_range:
            start = int(byte_range.removeprefix("bytes=").split("-")[0])
            time.sleep(max(0.0, 0.05 - start / PART * 0.01))

    def _answered(self, http_response: Any, **_: Any) -> None:
        with self._lock:
            content_range = http_response.headers.get("Content-Range", "bytes 0-")
            self.answered.append(int(content_range.split()[1].split("-")[0]))

    @property
    def ranged(self) -> list[str]:
        return [r for r in self.sent if r]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("bucket_versioned", [True, False], ids=["versioned", "unversioned"])
def test_every_pass_reads_exactly_the_object_in_any_read_sizes(
    s3: Any, size: int, bucket_versioned: bool
) -> None:
    if bucket_versioned:
        versioned(s3)
    data = _data(size, seed=size)
    put = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    upload = _storage(s3).open_upload(BUCKET, KEY, put.get("VersionId"))
    sizes = random.Random(size)

    passes = []
    for _ in range(3):  # the first pass reuses the first GET's body, the others do not
        body = upload.open()
        chunks = []
        while chunk := body.read(sizes.choice([1, 7, PART - 1, PART, PART + 1, 3 * PART])):
            chunks.append(chunk)
        assert body.read(5) == b""
        body.close()
        passes.append(b"".join(chunks))
    whole = upload.open()

    assert passes == [data, data, data]
    assert whole.read() == data
    whole.close()


def test_parts_that_arrive_out_of_order_are_handed_over_in_order(s3: Any) -> None:
    data = _data(12 * PART)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    upload = _storage(s3).open_upload(BUCKET, KEY, None)
    ranges = Ranges(s3, slower_first=True)

    body = upload.open()
    read = body.read()
    body.close()

    assert read == data
    wanted = [f"bytes={start}-{start + PART - 1}" for start in range(PART, 12 * PART, PART)]
    assert sorted(ranges.ranged) == sorted(wanted)
    assert ranges.answered != sorted(ranges.answered)  # the case happened: out of order


def test_no_more_than_the_window_of_parts_is_fetched_ahead_of_the_reader(s3: Any) -> None:
    data = _data(20 * PART)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    upload = _storage(s3).open_upload(BUCKET, KEY, None)
    upload.open().close()  # the first GET's body is used (and closed) by the first pass
    ranges = Ranges(s3)

    body = upload.open()
    ahead = []
    for consumed in range(1, 21):
        assert body.read(PART) == data[(consumed - 1) * PART : consumed * PART]
        time.sleep(0.02)  # time for the threads to fetch whatever they may
        ahead.append(len(ranges.ranged) - consumed)
    body.close()

    assert max(ahead) <= WINDOW  # the window: parts fetched but not yet read
    assert ahead[0] == WINDOW  # and it is used: the reader does not wait part by part
    assert len(ranges.ranged) == 20


def test_a_version_overwritten_mid_read_is_still_read_whole(s3: Any) -> None:
    versioned(s3)
    v1, v2 = _data(10 * PART, seed=1), _data(10 * PART, seed=2)
    put = s3.put_object(Bucket=BUCKET, Key=KEY, Body=v1)
    upload = _storage(s3).open_upload(BUCKET, KEY, put["VersionId"])

    body = upload.open()
    head = body.read(PART)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=v2)
    rest = body.read()
    body.close()

    assert head + rest == v1
    assert upload.open().read() == v1  # the next pass too


def test_an_unversioned_object_replaced_mid_read_is_a_reason(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=_data(10 * PART, seed=1))
    upload = _storage(s3).open_upload(BUCKET, KEY, None)
    body = upload.open()
    body.read(PART)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=_data(10 * PART, seed=2))

    with pytest.raises(InvalidUpload) as error:
        body.read()
    body.close()

    assert error.value.message == (
        "incoming/a.csv was replaced while it was being read; the new upload is processed as a "
        "run of its own."
    )


def test_a_version_deleted_mid_read_is_the_reason_a_single_stream_gave(s3: Any) -> None:
    versioned(s3)
    put = s3.put_object(Bucket=BUCKET, Key=KEY, Body=_data(10 * PART))
    upload = _storage(s3).open_upload(BUCKET, KEY, put["VersionId"])
    body = upload.open()
    body.read(PART)
    s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=put["VersionId"])

    with pytest.raises(InvalidUpload) as error:
        body.read()
    body.close()

    assert error.value.message == (
        "incoming/a.csv was deleted before it could be read; upload it again."
    )


class FailingPart:
    """The S3 client, except that the GetObject of one byte range fails with a server error."""

    def __init__(self, s3: Any, failing_range: str) -> None:
        self._s3, self._failing = s3, failing_range
        self.closed_bodies = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_object(self, **params: Any) -> dict[str, Any]:
        if params.get("Range") == self._failing:
            error = {"Code": "InternalError", "Message": "We encountered an internal error."}
            raise ClientError({"Error": error}, "GetObject")
        response: dict[str, Any] = self._s3.get_object(**params)
        return response


def test_a_part_that_fails_raises_its_error_when_the_reader_reaches_it(s3: Any) -> None:
    data = _data(10 * PART)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    failing = f"bytes={5 * PART}-{6 * PART - 1}"
    upload = Storage(FailingPart(s3, failing), read_part_bytes=PART, read_window=WINDOW)
    body = upload.open_upload(BUCKET, KEY, None).open()

    before = body.read(5 * PART)
    with pytest.raises(ClientError) as error:
        body.read(1)
    body.close()

    assert before == data[: 5 * PART]  # every byte before the failing part, in order
    assert error.value.response["Error"]["Code"] == "InternalError"  # unchanged, as before
