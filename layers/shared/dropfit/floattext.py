"""Transformed numbers as text, whole blocks at once with numpy: what
:func:`dropfit.preprocessing.float32_text` writes for one value (predict's side), byte for byte.

k-NN computes in float32, so a transformed value ``v`` (float64) is rounded to float32 ``w``
first, and written so that any reader (``strtof``, or ``strtod`` then a cast) gets ``w`` back:

- ``w`` an integer below 2**24 in magnitude (one-hot 0/1, most unscaled counts): ``repr``,
  e.g. ``1.0``, ``-0.0``;
- otherwise 9 significant digits in scientific form, trailing zeros dropped: ``-1.2345678e-01``.
  Nine digits always bring a float32 back; the digits come from ``w`` times a power of ten in
  float64 (a table shared by both implementations): near a tie the last digit may differ
  from exact decimal rounding, still well within half of ``w``'s float32 spacing;
- not finite (a scale that overflows float32): ``repr`` (``inf``), which training refuses.

Why not ``repr`` of the float64: formatting it costs ~600 ns a value in Python and numpy alike
(Dragon4 / shortest round trip), 30 times what the rest of the formatter spends per value.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dropfit.preprocessing import DIGITS9, E_MIN, EXACT_INTEGER, POW10, SCALE

WIDTH = 16  # the longest text (15) and its separator


def _ascii(width: int) -> npt.NDArray[np.uint64]:
    """Entry i: the ``width`` decimal digits of i as ASCII, the first in the lowest byte."""
    numbers = np.arange(10**width, dtype=np.uint64)
    packed = np.zeros(10**width, np.uint64)
    for k in range(width):
        digit = (numbers // np.uint64(10 ** (width - 1 - k))) % np.uint64(10) + np.uint64(48)
        packed |= digit << np.uint64(8 * k)
    return packed


def _bytes(*at: int) -> int:
    """A word with byte value 1 at each given byte position (which bytes of a slot are kept)."""
    return sum(1 << (8 * k) for k in at)


_FOUR, _TWO = _ascii(4), _ascii(2)
# trailing zeros of a group of 4 digits (all 4 for 0000)
_TRAILING = np.array(
    [4 if i == 0 else len(str(i)) - len(str(i).rstrip("0")) for i in range(10**4)], np.int64
)
_POW10_ARRAY, _SCALE_ARRAY = np.array(POW10), np.array(SCALE)
_INTEGER_STARTS = 10 ** np.arange(1, 8)  # 10 .. 10**7: where 2 .. 8 digits start
_LOG10_2 = math.log10(2)
_COMMA, _NEWLINE, _MINUS, _PLUS, _DOT, _E, _ZERO = 44, 10, 45, 43, 46, 101, 48
U64 = npt.NDArray[np.uint64]
# Slot layout (bytes): 0 sign, 1 first digit, 2 point, 3-10 eight more digits, 11 'e',
# 12 exponent sign, 13-14 exponent, 15 separator; as two little-endian words.
_SCI0 = _MINUS | (_DOT << 16)
_SCI1 = (_E << 24) | (_COMMA << 56)
# kept bytes by the number of fraction digits (0..8): the point and those digits
_SCI_KEEP0 = np.array(
    [_bytes(1, *((2, *range(3, min(8, 3 + f))) if f else ())) for f in range(9)], np.uint64
)
_SCI_KEEP1 = np.array(
    [_bytes(*range(0, max(0, f - 5)), 3, 4, 5, 6, 7) for f in range(9)], np.uint64
)
# integers: 1-8 digits right-aligned in bytes 1-8, ".0" in bytes 9-10
_INT0 = _MINUS
_INT1 = _DOT << 8 | _ZERO << 16 | (_COMMA << 56)
_INT_KEEP0 = np.array([_bytes(*range(9 - n, 8)) for n in range(9)], np.uint64)
_INT_KEEP1 = np.uint64(_bytes(0, 1, 2, 7))
_NEWLINE_SWAP = np.uint64((_COMMA ^ _NEWLINE) << 56)


def values_text(values: npt.NDArray[np.float64]) -> tuple[U64, U64]:
    """Each value's text (as :func:`dropfit.preprocessing.float32_text`) in a slot of
    :data:`WIDTH` bytes, followed by a comma (a line feed after each row's last value); and
    which bytes of the slots are text (1) or padding (0).

    ``values`` is (rows, columns); both results are (rows, columns, 2) little-endian words.
    """
    n, d = values.shape
    with np.errstate(over="ignore"):
        w = values.astype(np.float32).astype(np.float64).ravel()
    m = np.abs(w)
    finite = np.isfinite(w)
    integral = finite & (m < EXACT_INTEGER) & (w == np.trunc(w))
    neg = np.signbit(w)
    # scientific: the exponent (an estimate from the binary one, then exact against the table)
    m_sci = np.where(integral | ~finite, 1.0, m)
    _, binary = np.frexp(m_sci)
    e = np.floor((binary - 1) * _LOG10_2).astype(np.int64) - E_MIN
    e += m_sci >= _POW10_ARRAY[e + 1]
    e -= m_sci < _POW10_ARRAY[e]
    digits = np.rint(m_sci * _SCALE_ARRAY[e])
    over = digits >= DIGITS9
    if over.any():
        e[over] += 1
        digits[over] = np.rint(m_sci[over] * _SCALE_ARRAY[e[over]])
    whole = digits.astype(np.int64)
    first, rest = np.divmod(whole, 10**8)
    high, low = np.divmod(rest, 10**4)
    fraction = 8 - _TRAILING[low] - (low == 0) * _TRAILING[high]
    exponent = e + E_MIN
    four_low = _FOUR[low]
    words = np.empty((n * d, 2), np.uint64)
    keep = np.empty((n * d, 2), np.uint64)
    words[:, 0] = (
        np.uint64(_SCI0)
        | ((first + _ZERO).astype(np.uint64) << np.uint64(8))
        | (_FOUR[high] << np.uint64(24))
        | (four_low << np.uint64(56))
    )
    sign = np.where(exponent < 0, np.uint64(_MINUS), np.uint64(_PLUS))
    words[:, 1] = (
        np.uint64(_SCI1)
        | (four_low >> np.uint64(8))
        | (sign << np.uint64(32))
        | (_TWO[np.abs(exponent)] << np.uint64(40))
    )
    keep[:, 0] = _SCI_KEEP0[fraction] | neg.astype(np.uint64)
    keep[:, 1] = _SCI_KEEP1[fraction]
    if integral.any():
        _integers(w[integral], neg[integral], words, keep, integral)
    for i in np.flatnonzero(~finite):
        text = repr(float(w[i])).encode().ljust(WIDTH - 1, b"\0") + b","
        words[i] = np.frombuffer(text, np.uint64)
        keep[i] = np.frombuffer(bytes(c != 0 for c in text), np.uint64)
    words = words.reshape(n, d, 2)
    if d:
        words[:, -1, 1] ^= _NEWLINE_SWAP
    return words, keep.reshape(n, d, 2)


def _integers(
    w: npt.NDArray[np.float64],
    neg: npt.NDArray[np.bool_],
    words: U64,
    keep: U64,
    at: npt.NDArray[np.bool_],
) -> None:
    """``repr`` of integral values below 2**24: ``[-]digits.0``."""
    number = np.abs(w).astype(np.int64)
    high, low = np.divmod(number, 10**4)
    length = np.searchsorted(_INTEGER_STARTS, number, side="right") + 1
    words[at, 0] = np.uint64(_INT0) | (_FOUR[high] << np.uint64(8)) | (_FOUR[low] << np.uint64(40))
    words[at, 1] = np.uint64(_INT1) | (_FOUR[low] >> np.uint64(24))
    keep[at, 0] = _INT_KEEP0[length] | neg.astype(np.uint64)
    keep[at, 1] = _INT_KEEP1


def rows_text(
    prefix: npt.NDArray[np.uint8],
    prefix_keep: npt.NDArray[np.bool_],
    values: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """CSV rows ``<prefix><value>,...,<value>\\n``: each row's prefix is the kept bytes of its
    row of ``prefix`` (its label and a comma); the values as
    :func:`dropfit.preprocessing.float32_text` writes them.

    Returns the rows' bytes and where each row ends.
    """
    n, width = prefix.shape
    words, keep = values_text(values)
    text = values.shape[1] * WIDTH
    table = np.empty((n, width + text), np.uint8)
    kept = np.empty(table.shape, bool)
    table[:, :width] = prefix
    table[:, width:] = words.view(np.uint8).reshape(n, text)
    kept[:, :width] = prefix_keep
    kept[:, width:] = keep.view(bool).reshape(n, text)
    return table[kept], np.cumsum(kept.sum(axis=1, dtype=np.int64))
