"""Where the rows and fields of plain CSV lines are, found with numpy over their bytes.

Both passes of the fast engine (:mod:`dropfit.plaincsv`, :mod:`dropfit.plainwrite`) cut each
block of whole lines into pieces of about a MiB (numpy's passes over the bytes run faster on
pieces that stay in the CPU cache) and find every separator of a piece at once: a piece is
usable only when each of its lines has exactly the header's number of fields. Nothing here
parses a number or decodes a text but the few distinct labels (:func:`label_codes`);
:func:`plain_numbers` proves, from the bytes alone, that every feature of a piece is a finite
float32 for both pandas' float parser and the reference engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit.csvscan import MAX_NAME_LENGTH, first_rows

PIECE_BYTES = 1024 * 1024
_BLANK_LINES = re.compile(rb"\n\n+")
_NEWLINE, _PLUS, _COMMA, _MINUS, _DOT, _SLASH, _ZERO = 10, 43, 44, 45, 46, 47, 48
# A plain decimal has at most this many characters before its point: below 1e38, within float32.
_MAX_INTEGER_PART = 38
# Longer labels are no class names (or are padded with spaces): the reference engine says which.
_MAX_LABEL_BYTES = 4 * MAX_NAME_LENGTH  # UTF-8 characters take up to 4 bytes
_LOW_BYTES = np.array([(1 << (8 * m)) - 1 for m in range(8)] + [2**64 - 1], dtype=np.uint64)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def pieces(block: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive pieces of whole lines of a block that ends with a line feed."""
    start = 0
    while start < len(block):
        end = block.rfind(b"\n", start, start + PIECE_BYTES) + 1
        if end <= start:  # a line longer than a piece
            end = block.index(b"\n", start) + 1
        yield start, end
        start = end


def numbered_pieces(blocks: Iterable[bytes]) -> Iterator[tuple[int, U8]]:
    """(block number, piece) of every piece of every block, in order."""
    for number, block in enumerate(blocks):
        arr = np.frombuffer(block, np.uint8)
        for start, end in pieces(block):
            yield number, arr[start:end]


@dataclass(frozen=True, slots=True)
class Fields:
    """The fields of each line of a piece, which ends with a line feed.

    ``edges[i, j]`` is where field j of line i starts, ``edges[i, j + 1] - 1`` the separator
    after it (a comma, or the line feed after the last field); the rows overlap by one edge.
    """

    piece: U8  # the piece, without the blank lines it may have had
    edges: I64  # (lines, columns + 1), a view of flat
    flat: I64  # where every field starts, then one past the piece's end

    @property
    def n_rows(self) -> int:
        return len(self.edges)

    @property
    def n_columns(self) -> int:
        return self.edges.shape[1] - 1

    def start(self, column: int) -> I64:
        return self.edges[:, column]

    def end(self, column: int) -> I64:
        """Where each line's field ``column`` ends (its separator)."""
        return self.edges[:, column + 1] - 1


def fields(piece: U8, n_columns: int) -> Fields | None:
    """The fields of a piece's lines (blank lines dropped, as pandas skips them); None when a
    line does not have ``n_columns`` fields."""
    found = _fields(piece, n_columns)
    if found is None and _has_blank_lines(piece):
        cleaned = _BLANK_LINES.sub(b"\n", piece.tobytes()).lstrip(b"\n")
        found = _fields(np.frombuffer(cleaned, np.uint8), n_columns)
    return found


def _has_blank_lines(piece: U8) -> bool:
    newline = piece == _NEWLINE
    return bool(newline[0] or (newline[1:] & newline[:-1]).any())


def _fields(piece: U8, n_columns: int) -> Fields | None:
    # Separator i+1 is at edge i+1; edge 0 stands for the line feed before the piece.
    newline = piece == _NEWLINE
    separator = np.empty(len(piece) + 1, dtype=bool)
    separator[0] = True
    np.equal(piece, _COMMA, out=separator[1:])
    separator[1:] |= newline
    edges = np.flatnonzero(separator)
    n_rows = int(np.count_nonzero(newline))
    if len(edges) != n_rows * n_columns + 1:
        return None
    # With as many line feeds as lines, every n_columns-th separator being one is every line
    # having n_columns - 1 commas.
    if n_rows and not (piece[edges[n_columns::n_columns] - 1] == _NEWLINE).all():
        return None
    step = edges.strides[0]
    rows = np.lib.stride_tricks.as_strided(
        edges, (n_rows, n_columns + 1), (n_columns * step, step), writeable=False
    )
    return Fields(piece, rows, edges)


# --- pass 1: labels and numbers -------------------------------------------------------------


def padded(piece: U8) -> U8:
    """A copy of the piece with 8 zero bytes after it (reading 8 bytes at any offset is safe)."""
    copy = np.zeros(len(piece) + 8, dtype=np.uint8)
    copy[: len(piece)] = piece
    return copy


def label_codes(data: U8, starts: I64, ends: I64) -> tuple[npt.NDArray[np.intp], list[str]] | None:
    """(each row's code, the distinct texts) of the label fields ``data[starts:ends]``, in
    order of first appearance; None for labels too long to be class names, or a hash collision.

    ``data`` is padded (:func:`padded`). Labels are told apart by a hash of their bytes, then
    checked against the first row of their code: by their first and last 8 bytes and length
    (the whole text up to 16 bytes), longer ones byte for byte.
    """
    lengths = ends - starts
    if lengths.max() > _MAX_LABEL_BYTES:
        return None
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    first = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    last = np.where(lengths > 8, words[np.maximum(ends - 8, 0)], 0)
    key = (lengths.astype(np.uint64) * _MIX[1] ^ first) * _MIX[0]
    for offset in range(8, int(lengths.max()), 8):
        rows = np.flatnonzero(lengths > offset)
        word = words[starts[rows] + offset] & _LOW_BYTES[np.minimum(lengths[rows] - offset, 8)]
        key[rows] = (key[rows] ^ word) * _MIX[0]
    codes, uniques = pd.factorize(key)
    firsts = first_rows(codes, len(uniques), 0)
    of_row = firsts[codes]
    if not (
        (first == first[of_row]).all()
        and (last == last[of_row]).all()
        and (lengths == lengths[of_row]).all()
    ):
        return None
    long = np.flatnonzero(lengths > 16)
    if len(long) and not _same_bytes(data, starts[long], starts[of_row[long]], lengths[long]):
        return None
    texts = [data[starts[r] : ends[r]].tobytes().decode("utf-8") for r in firsts]
    return codes, texts


def _same_bytes(data: U8, a: I64, b: I64, lengths: I64) -> bool:
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return bool(
        (data[np.repeat(a, lengths) + within] == data[np.repeat(b, lengths) + within]).all()
    )


def blank_labels(data: U8, starts: I64, ends: I64) -> None:
    """Overwrite each label field with ``.0…0``: one point, as every plain decimal field has."""
    lengths = ends - starts
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    data[offsets + np.arange(len(offsets))] = _ZERO
    data[starts] = _DOT


def plain_numbers(data: U8, found: Fields, label: int | None) -> bool:
    """True when every field but the label is a plain decimal (``12``, ``-1.5``, ``.5``):
    ``[+-]?[0-9]*[.]?[0-9]+`` with at most 38 characters before the point (in all, without one).

    ``data`` is the piece, its labels (if given) overwritten by :func:`blank_labels`. Such a
    number is one pandas' float parser and :func:`dropfit.csvscan.to_floats` both read, to the
    same finite value below float32's largest; False says nothing either way.
    """
    body = data[: len(found.piece)]
    # the bytes +,-./0123456789 and the line feed, but the slash
    if not (((body - _PLUS) < 15) | (body == _NEWLINE)).all() or (body == _SLASH).any():
        return False
    # A sign opens its field: as many signs as fields that start with one. (Counted, not
    # compared with the byte before each: numpy's passes over two shifted views are slow.)
    signs = np.count_nonzero(body == _MINUS) + np.count_nonzero(body == _PLUS)
    if signs:
        first = body[found.flat[:-1]]  # every field's first byte
        if np.count_nonzero(first == _MINUS) + np.count_nonzero(first == _PLUS) != signs:
            return False
    dots = np.flatnonzero(body == _DOT)
    if len(dots) == found.n_rows * found.n_columns and _a_point_in_each_quickly(dots, found):
        return True
    if len(dots) == found.n_rows * found.n_columns:
        return _a_point_in_each(dots, found, label)
    return _at_most_a_point_in_each(body, dots, found, label)


def _a_point_in_each_quickly(dots: I64, found: Fields) -> bool:
    """As many points as fields: the k-th point lies in the k-th field, at most 38 characters
    after its start and 2 before its end, for every k (a blanked label of one character is
    not: :func:`_a_point_in_each` then looks again, label aside)."""
    before = dots - found.flat[:-1]  # characters before the point
    if before.min() < 0 or before.max() > _MAX_INTEGER_PART:
        return False
    return bool((found.flat[1:] - dots).min() >= 3)  # 2 + digits after it


def _a_point_in_each(dots: I64, found: Fields, label: int | None) -> bool:
    """As many points as fields, the fast way (most decimal data): the k-th point lies in the
    k-th field, for every k."""
    at = dots.reshape(found.n_rows, -1)
    before = at - found.edges[:, :-1]  # characters before the point
    after = found.edges[:, 1:] - at  # 2 + digits after it
    if label is not None:
        before[:, label], after[:, label] = 0, 3
    return bool((before.view(np.uint64) <= _MAX_INTEGER_PART).all() and (after >= 3).all())


def _at_most_a_point_in_each(body: U8, dots: I64, found: Fields, label: int | None) -> bool:
    """Fields of 1 to 38 characters that end with a digit, no two points in one."""
    starts, ends = found.edges[:, :-1], found.edges[:, 1:] - 1
    widths, last = ends - starts, body[ends - 1]
    if label is not None:
        widths[:, label], last[:, label] = 1, _ZERO
    if not (((widths - 1).view(np.uint64) < _MAX_INTEGER_PART).all() and (last - _ZERO < 10).all()):
        return False
    if len(dots) == (0 if label is None else found.n_rows):
        return True  # no point but the blanked labels'
    # In the order they come, separators and points: never two points in a row.
    marks = body[np.flatnonzero((body == _DOT) | (body == _COMMA) | (body == _NEWLINE))]
    points = marks == _DOT
    return not (points[1:] & points[:-1]).any()
