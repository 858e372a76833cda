"""Plain decimal fields (``-12.5``, ``.5``, ``+3``) to float64 with numpy, as ``float()`` does.

Each field of up to 8 characters after its sign is read as one little-endian 64-bit word (the 8
bytes that end where the field ends), its point found and squeezed out, and its digits combined
with three multiplications (the "eight digits at once" technique of simdjson). The integer M of
at most 8 digits and the power of ten of its fraction digits are exact in float64, so
``M / 10**k`` is the correctly rounded value, the same as ``float(text)`` (Clinger's fast path).
Fields this cannot read (longer, an exponent, anything else) are read with ``float()``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
PAD = 8  # zero bytes before and after a piece: a word may be read at any field
_MINUS, _PLUS = 45, 43
_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_POINTS = np.uint64(0x2E2E2E2E2E2E2E2E)
_ZEROS = np.uint64(0x3030303030303030)
_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_DIGITS_AFTER = np.uint64(0x0706050403020100)  # byte j holds j
# the top n bytes of a word (the field's last n characters), and '0' in the others
_KEEP = np.array([0] + [(2**64 - 1) ^ ((1 << (8 * (8 - n))) - 1) for n in range(1, 9)], np.uint64)
_FILL = _ZEROS & ~_KEEP
_POWERS = 10.0 ** np.arange(9)
_U = np.uint64


def padded(piece: U8) -> U8:
    """The piece with :data:`PAD` zero bytes on each side (what :func:`parse` reads)."""
    out = np.zeros(len(piece) + 2 * PAD, np.uint8)
    out[PAD : PAD + len(piece)] = piece
    return out


def parse(data: U8, starts: I64, ends: I64) -> F64:
    """The numbers in ``data[starts:ends]`` (``data`` from :func:`padded`, positions in the
    piece), as ``float()`` reads them; ValueError names a field that is not a number."""
    shape = starts.shape
    starts, ends = starts.ravel(), ends.ravel()
    sign = data[starts + PAD]
    negative = sign == _MINUS
    begin = starts + (negative | (sign == _PLUS))
    length = ends - begin
    words = np.ndarray((len(data) - 7,), np.dtype("<u8"), data, 0, (1,))
    short = (length > 0) & (length <= 8)
    w = words[np.where(short, ends + PAD - 8, 0)]
    n = np.where(short, length, 0)
    w = (w & _KEEP[n]) | _FILL[n]
    # the point: its byte is 0 in t; the lowest zero byte of t is found exactly
    t = w ^ _POINTS
    point = ((t - _ONES) & ~t & _HIGHS) >> _U(7)  # 1 at the point's byte
    # the point at byte i shifts byte 7 - i of the constant (7 - i: the digits after it) to the top
    fraction = ((point * _DIGITS_AFTER) >> _U(56)).astype(np.int64)
    has_point = point != 0
    below = point - _U(1)  # the bytes before the point (all of them when there is none)
    squeezed = (w & ~(below | (point * _U(0xFF)))) | ((w & below) << _U(8)) | _U(0x30)
    w = np.where(has_point, squeezed, w)
    digits = ((w & _NIBBLES) == _ZEROS) & (((w + _SIXES) & _NIBBLES) == _ZEROS)
    ok = short & digits & ((point & (point - _U(1))) == 0) & (length > has_point)
    v = w & _LOW_NIBBLES
    v = (v * _U(2561)) >> _U(8)
    v = ((v & _U(0x00FF00FF00FF00FF)) * _U(6553601)) >> _U(16)
    v = ((v & _U(0x0000FFFF0000FFFF)) * _U(42949672960001)) >> _U(32)
    values = v.astype(np.float64) / _POWERS[fraction]
    values = np.where(negative, -values, values)  # (a ufunc's where= is several times slower)
    for i in np.flatnonzero(~ok):
        values[i] = float(data[starts[i] + PAD : ends[i] + PAD].tobytes())
    return values.reshape(shape)
