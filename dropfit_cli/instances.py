"""The body of a predict request from the command line: VALUES as one JSON instance, or CSV
rows sent as they are (the API reads an optional header row and checks every value)."""

from __future__ import annotations

import json
import math


def request_body(values: tuple[str, ...], rows: bytes | None) -> tuple[bytes, str]:
    """``(body, content type)``; ValueError names what is wrong with the input."""
    if values and rows is not None:
        raise ValueError("give VALUES or CSV rows (--file, or '-' for stdin), not both")
    if rows is not None:
        if not rows.strip():
            raise ValueError("no CSV rows to predict (the input is empty)")
        return rows, "text/csv"
    if not values:
        raise ValueError("nothing to predict: give VALUES, --file rows.csv, or '-' for stdin")
    instance = [_number(text, position) for position, text in enumerate(_fields(values), 1)]
    return json.dumps({"instances": [instance]}).encode(), "application/json"


def _fields(values: tuple[str, ...]) -> list[str]:
    """``5.1 3.5``, ``5.1,3.5`` and ``"5.1, 3.5"`` are the same two values."""
    return [field for value in values for field in value.replace(",", " ").split()]


def _number(text: str, position: int) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"value {position} ({text!r}) is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"value {position} ({text!r}) is not a finite number")
    return number
