"""S3: read an upload exactly as it was announced, as a stream; write datasets in bounded memory.

Reading: each pass of the formatter opens the upload anew and reads the *same version*
(``VersionId``; ``IfMatch`` on the ETag when the bucket is not versioned) as ranged GETs of
``read_part_bytes``, ``read_window`` of them fetched at once ahead of the reader and handed over
strictly in order: one GetObject stream gives ~90 MB/s, S3 scales with concurrent connections.
Reading twice instead of spooling to /tmp: no size limit from the ephemeral storage, no disk
writes, and in-region transfer costs nothing.

Writing: :class:`ObjectBatch` hands out writers that upload multipart in parts of ``part_bytes``
(small objects are one PutObject), at most two parts in flight, and completes every object only
when the whole batch succeeded; on any error it aborts them all, so a failed run leaves no
partial dataset behind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from dropfit.csvsource import Readable
from dropfit.errors import InvalidUpload

# A missing key is 404 only to a caller with s3:ListBucket; the format function has none (least
# privilege), so S3 answers 403 for it, exactly as it answers a read it denies, for instance of an
# object encrypted with a KMS key the function may not use (AccessDenied, "Access Denied": the
# same code and message, boto/boto3#2952). A HEAD of the object tells them apart without
# ListBucket: it needs s3:GetObject only and reads no data, so no KMS key (HeadObject's docs), and
# it succeeds when the object is there.
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "400", "NotFound", "InvalidArgument"})
_FORBIDDEN = frozenset({"403", "AccessDenied"})
_GONE = _MISSING | _FORBIDDEN
_CHANGED = frozenset({"PreconditionFailed", "412"})
PART_BYTES = 8 * 1024 * 1024  # S3 allows 10,000 parts: objects up to 80 GB
READ_BYTES = 4 * 1024 * 1024
# S3's performance guide: byte-range GETs of 8 or 16 MB, one connection per 85-90 MB/s wanted.
# Memory: the window of parts fetched ahead plus the one being read, 5 x 8 MiB = 40 MiB at most.
READ_PART_BYTES = 8 * 1024 * 1024
READ_WINDOW = 4


def _version(version_id: str | None) -> dict[str, str]:
    """The VersionId argument for a version id from S3 ("null": the bucket is not versioned)."""
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


@dataclass(frozen=True, slots=True)
class FoundUpload:
    key: str
    metadata: dict[str, str]


class Storage:
    def __init__(
        self,
        client: Any,
        part_bytes: int = PART_BYTES,
        read_part_bytes: int = READ_PART_BYTES,
        read_window: int = READ_WINDOW,
    ) -> None:
        self.client = client
        self.part_bytes = part_bytes
        self.read_part_bytes = read_part_bytes
        self.read_window = read_window

    def find_upload(self, bucket: str, key: str, version_id: str | None) -> FoundUpload | None:
        """The object's real key and its user metadata, or None if it is gone.

        S3 notifications URL-encode keys ('my data.csv' arrives as 'my+data.csv'); try the key
        as given first, then decoded, so both encodings of an event work.
        """
        for candidate in dict.fromkeys((key, unquote_plus(key))):
            try:
                head = self.client.head_object(Bucket=bucket, Key=candidate, **_version(version_id))
            except ClientError as error:
                if error.response["Error"]["Code"] in _GONE:
                    continue
                raise
            return FoundUpload(candidate, dict(head.get("Metadata", {})))
        return None

    def current_version(self, bucket: str, key: str) -> str | None:
        """The key's current version id; None if the key is deleted (a delete marker) or gone."""
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _GONE:
                return None
            raise
        version: str | None = head.get("VersionId")
        return version

    def open_upload(self, bucket: str, key: str, version_id: str | None) -> Upload:
        """The announced version (never a later overwrite); gone objects are a user error."""
        return Upload(
            self.client,
            bucket,
            key,
            version_id,
            part_bytes=self.read_part_bytes,
            window=self.read_window,
        )

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """A small object of ours, whole; None if there is none (403 too: see _GONE)."""
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _GONE:
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def lines(self, bucket: str, key: str) -> Iterator[bytes]:
        """An object of ours (a channel), streamed line by line."""
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_lines(chunk_size=READ_BYTES)
        finally:
            body.close()

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str:
        """A URL that lets its holder GET this one object for ``expires_in`` seconds."""
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    def delete_prefix(self, bucket: str, prefix: str) -> list[str]:
        """Delete every object under ``prefix`` (the bucket keeps their versions for a while, as
        its lifecycle rule says); the keys deleted."""
        deleted = self.list_keys(bucket, prefix)
        for key in deleted:
            self.client.delete_object(Bucket=bucket, Key=key)
        return deleted

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """The keys under ``prefix``, in S3's (UTF-8 binary) order."""
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            listed["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for listed in page.get("Contents", [])
        ]

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{bucket}/{key}"

    @contextmanager
    def batch(self, bucket: str, content_type: str) -> Iterator[ObjectBatch]:
        """Writers whose objects appear together at the end, or not at all."""
        batch = ObjectBatch(self.client, bucket, content_type, self.part_bytes)
        try:
            yield batch
            batch.commit()
        except BaseException:
            batch.abort()
            raise


class Upload:
    """One object version, opened as a stream as many times as the formatter needs."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        version_id: str | None,
        *,
        part_bytes: int = READ_PART_BYTES,
        window: int = READ_WINDOW,
    ) -> None:
        self._client = client
        self.bucket, self.key = bucket, key
        self._part_bytes, self._window = part_bytes, window
        first = self._get(_version(version_id))
        self.metadata: dict[str, str] = dict(first.get("Metadata", {}))
        self.version_id: str | None = first.get("VersionId")
        self.size: int = first["ContentLength"]
        etag = first.get("ETag")
        # Later reads must see the same bytes: the version if there is one, else the same ETag.
        self._pin = _version(self.version_id) or ({"IfMatch": etag} if etag else {})
        self._first: Readable | None = first["Body"]

    def open(self) -> Readable:
        """A stream over the object from its first byte (the first call reuses the first GET
        for its first part)."""
        first, self._first = self._first, None
        return _RangedRead(self._part, self.size, self._part_bytes, self._window, first)

    def _part(self, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop`` (exclusive) of the pinned version."""
        body = self._get(self._pin, f"bytes={start}-{stop - 1}")["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _get(self, pin: dict[str, str], byte_range: str | None = None) -> dict[str, Any]:
        ranged = {"Range": byte_range} if byte_range else {}
        try:
            response: dict[str, Any] = self._client.get_object(
                Bucket=self.bucket, Key=self.key, **pin, **ranged
            )
        except ClientError as error:
            # Reasons name the key only: the bucket is no business of the API's callers.
            code = error.response["Error"]["Code"]
            denied = code.startswith("KMS.") or (code in _FORBIDDEN and self._exists(pin))
            if denied:
                raise InvalidUpload(
                    f"{self.key} cannot be read: access denied (code {code}) although it exists. "
                    "It is most likely encrypted with a KMS key that the format function may not "
                    "use: upload it again with the bucket's default encryption, or let the "
                    "function's role decrypt with that key."
                ) from None
            if code in _GONE:
                raise InvalidUpload(
                    f"{self.key} was deleted before it could be read; upload it again."
                ) from None
            if code in _CHANGED:
                raise InvalidUpload(
                    f"{self.key} was replaced while it was being read; the new upload is "
                    "processed as a run of its own."
                ) from None
            raise
        return response

    def _exists(self, pin: dict[str, str]) -> bool:
        """Whether the object (this version) is there, asked without reading it."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key, **pin)
        except ClientError as error:
            if error.response["Error"]["Code"] in _GONE | _CHANGED:
                return False
            raise
        return True


def _read_fully(body: Readable, size: int) -> bytes:
    """The first ``size`` bytes of a body (a read may return fewer); the body is closed."""
    try:
        parts: list[bytes] = []
        while size > 0 and (data := body.read(size)):
            parts.append(data)
            size -= len(data)
        return b"".join(parts)
    finally:
        body.close()


class _RangedRead:
    """An object's bytes in order, fetched as parts of ``part_bytes`` by ``window`` threads.

    At most ``window`` parts are fetched or waiting ahead of the one being read, so memory is
    ``(window + 1) * part_bytes`` whatever the size. A part that fails raises its error when the
    reader reaches it, as a single stream would at that point.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        part_bytes: int,
        window: int,
        first: Readable | None = None,
    ) -> None:
        self._fetch, self._size, self._part_bytes = fetch, size, part_bytes
        self._first = first
        self._starts = iter(range(0, size, part_bytes))
        self._pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="s3-read")
        self._ahead: deque[Future[bytes]] = deque()
        self._part = memoryview(b"")
        self._offset = 0
        for _ in range(window):
            self._fetch_next()

    def _fetch_next(self) -> None:
        start = next(self._starts, None)
        if start is None:
            return
        stop = min(start + self._part_bytes, self._size)
        first, self._first = self._first, None
        if first is not None:  # the first GET's body: its first part is already on its way
            self._ahead.append(self._pool.submit(_read_fully, first, stop))
        else:
            self._ahead.append(self._pool.submit(self._fetch, start, stop))

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(self._part_bytes), b""))
        pieces: list[memoryview] = []
        while size > 0:
            if self._offset == len(self._part):
                if not self._ahead:
                    break
                self._part, self._offset = memoryview(self._ahead.popleft().result()), 0
                self._fetch_next()
            piece = self._part[self._offset : self._offset + size]
            pieces.append(piece)
            self._offset += len(piece)
            size -= len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        for future in self._ahead:
            future.cancel()
        self._pool.shutdown(wait=True)
        if self._first is not None:
            self._first.close()


class ObjectBatch:
    def __init__(self, client: Any, bucket: str, content_type: str, part_bytes: int) -> None:
        self._client = client
        self._bucket = bucket
        self._content_type = content_type
        self._part_bytes = part_bytes
        self._writers: list[ObjectWriter] = []
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="s3-part")

    def writer(self, key: str) -> ObjectWriter:
        writer = ObjectWriter(self, key)
        self._writers.append(writer)
        return writer

    def commit(self) -> None:
        try:
            for writer in self._writers:
                writer.commit()
        finally:
            self._pool.shutdown()

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
        self._pool.shutdown(cancel_futures=True)

    def _submit(self, call: Callable[..., Any], **kwargs: Any) -> Future[Any]:
        return self._pool.submit(call, Bucket=self._bucket, **kwargs)


class ObjectWriter:
    """A file-like sink for one object; memory: one part being filled, two being uploaded."""

    def __init__(self, batch: ObjectBatch, key: str) -> None:
        self._batch = batch
        self.key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._closed = False

    def write(self, data: bytes | memoryview) -> int:
        if self._closed:
            raise ValueError(f"{self.key} is closed")
        self._buffer += data
        while len(self._buffer) >= self._batch._part_bytes:
            self._send(bytes(self._buffer[: self._batch._part_bytes]))
            del self._buffer[: self._batch._part_bytes]
        return len(data)

    def close(self) -> None:
        """No more data: upload what is left as the last part (a small object waits for commit)."""
        if self._closed:
            return
        self._closed = True
        if self._upload_id is not None and self._buffer:
            self._send(bytes(self._buffer))
            self._buffer = bytearray()

    def commit(self) -> None:
        self.close()
        client, bucket = self._batch._client, self._batch._bucket
        if self._upload_id is None:
            client.put_object(
                Bucket=bucket,
                Key=self.key,
                Body=bytes(self._buffer),
                ContentType=self._batch._content_type,
            )
            return
        parts = [
            {"PartNumber": number, "ETag": future.result()["ETag"]}
            for number, future in enumerate(self._parts, start=1)
        ]
        client.complete_multipart_upload(
            Bucket=bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        for future in self._parts:
            future.cancel()
        for future in self._parts:
            if not future.cancelled():
                with suppress(Exception):  # the upload is aborted below either way
                    future.result()
        # Best effort: a lifecycle rule for incomplete multipart uploads would sweep a leftover.
        with suppress(ClientError):
            self._batch._client.abort_multipart_upload(
                Bucket=self._batch._bucket, Key=self.key, UploadId=self._upload_id
            )

    def _send(self, part: bytes) -> None:
        batch = self._batch
        if self._upload_id is None:
            created = batch._client.create_multipart_upload(
                Bucket=batch._bucket, Key=self.key, ContentType=batch._content_type
            )
            self._upload_id = created["UploadId"]
        # Back-pressure: at most two parts of this object in flight.
        while sum(not future.done() for future in self._parts) >= 2:
            next(future for future in self._parts if not future.done()).result()
        self._parts.append(
            batch._submit(
                batch._client.upload_part,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=len(self._parts) + 1,
                Body=part,
            )
        )
