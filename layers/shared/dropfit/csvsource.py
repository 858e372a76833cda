"""Reading an upload as bytes, in bounded memory, with the checks that come before any parsing.

Every pass over an upload reads it through a :class:`ValidatedReader`, which refuses what is not
UTF-8 text as soon as it sees it (the same messages, and the same order, as checking the whole
file at once: empty, then NUL bytes in the first 64 KiB, then the first byte that is not UTF-8).
Pure Python; pandas and numpy are not needed here.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from typing import Protocol

from dropfit.errors import InvalidUpload


class Readable(Protocol):
    """What the formatter reads: a file, a BytesIO, an S3 body."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


# Opens the upload from its first byte. Each pass opens it anew (for S3: one GetObject of the
# same object version), so nothing but the current block is ever held in memory.
Source = Callable[[], Readable]

BLOCK_BYTES = 8 * 1024 * 1024
BINARY_PROBE_BYTES = 65536
BOM = codecs.BOM_UTF8
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() strips


def bytes_source(data: bytes) -> Source:
    """A source over bytes already in memory (tests, small uploads)."""
    return lambda: io.BytesIO(data)


class ValidatedReader(io.RawIOBase):
    """A binary stream over an upload that raises :class:`InvalidUpload` for what is not text.

    ``read`` fills its buffer completely unless the upload ends (S3 bodies may return short
    reads), so blocks cut from it depend on the content only: two passes see the same blocks.
    """

    def __init__(self, stream: Readable) -> None:
        super().__init__()
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._offset = 0  # bytes handed out so far
        self._text_seen = False  # any byte that is not ASCII whitespace
        self._pending: bytes = b""  # the first 64 KiB, read ahead for the NUL check
        self._started = False
        self._eof = False

    def readable(self) -> bool:
        return True

    @property
    def offset(self) -> int:
        return self._offset

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._started:
            self._start()
        parts: list[bytes] = []
        wanted = size
        if self._pending:
            parts.append(self._pending[:wanted])
            self._pending = self._pending[wanted:]
            wanted -= len(parts[0])
        while wanted > 0 and not self._eof:
            data = self._stream.read(wanted)
            if not data:
                self._eof = True
                break
            parts.append(data)
            wanted -= len(data)
        block = parts[0] if len(parts) == 1 else b"".join(parts)
        self._check(block)
        return block

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(BLOCK_BYTES), b""))

    def drain(self) -> None:
        """Read to the end, so that a problem later in the file is still reported first."""
        while self.read(BLOCK_BYTES):
            pass

    def close(self) -> None:
        self._stream.close()
        super().close()

    def _start(self) -> None:
        self._started = True
        probe = self._stream.read(BINARY_PROBE_BYTES)
        while probe and len(probe) < BINARY_PROBE_BYTES:
            more = self._stream.read(BINARY_PROBE_BYTES - len(probe))
            if not more:
                break
            probe += more
        if b"\x00" in probe:
            raise InvalidUpload(
                "The file looks binary (it contains NUL bytes); upload comma-separated UTF-8 text."
            )
        self._pending = probe

    def _check(self, block: bytes) -> None:
        start = self._offset
        self._offset += len(block)
        if not self._text_seen and block.strip(_WHITESPACE):
            self._text_seen = True
        final = not block
        if final and not self._text_seen:
            raise InvalidUpload("The file is empty; upload a CSV with a header row and data rows.")
        if block.isascii() and not self._decoder.getstate()[0]:
            return  # the common case: nothing to decode
        try:
            self._decoder.decode(block, final)
        except UnicodeDecodeError as exc:
            # exc.start counts from the bytes the decoder still held from the previous block.
            held = len(exc.object) - len(block)
            position = start - held + exc.start
            raise InvalidUpload(
                f"The file is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset "
                f"{position} cannot be decoded. Save the CSV as UTF-8."
            ) from None


def open_validated(source: Source) -> ValidatedReader:
    return ValidatedReader(source())


def open_text(source: Source) -> io.TextIOWrapper:
    """The upload as text, exactly as decoding it whole with ``utf-8-sig`` would give it."""
    return io.TextIOWrapper(
        io.BufferedReader(open_validated(source), BLOCK_BYTES), encoding="utf-8-sig", newline=""
    )


def line_blocks(reader: ValidatedReader, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The upload in blocks of whole lines (each ends with ``\\n``), a few MiB each.

    A block ends at the last line feed of a fixed-size read, so the blocks depend on the content
    only. The last line gets a line feed if it has none.
    """
    carry = b""
    while True:
        chunk = reader.read(block_bytes)
        if not chunk:
            break
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            carry += chunk  # one line longer than a block: keep reading
            continue
        # one copy of the block at most (the carried part of a line is short)
        block = b"".join((carry, memoryview(chunk)[:cut])) if cut < len(chunk) or carry else chunk
        carry = chunk[cut:]
        yield block
    if carry:
        yield carry + b"\n"
