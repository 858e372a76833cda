"""Server-side input validation driven by botocore's service models.

AWS validates every request against the same Smithy model botocore ships, and reports
violations as ``N validation error(s) detected: Value 'x' at 'memberPath' failed to satisfy
constraint: ...``. botocore already checks types and required members client-side; checking
again here keeps the local service honest for other clients and catches what botocore skips
(maximum lengths, value ranges, patterns and enums).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

_MAX_REPORTED = 10


@functools.cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None  # Java-only syntax (\p{...}, \z): not checked


def _path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _shown(value: Any) -> str:
    return str(value) if not isinstance(value, (list, dict)) else "[...]"


class _Walker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_shown(value)}'"
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def walk(self, shape: Shape, value: Any, path: str) -> None:
        kind = shape.type_name
        check = getattr(self, f"_{kind}", None)
        if check is not None:
            check(shape, value, path)

    def _structure(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            self.fail(value, path, "Member must be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(None, _path(path, name), "Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                self.walk(member, value[name], _path(path, name))

    def _list(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            self.fail(value, path, "Member must be a list")
            return
        self._length(shape, value, path, len(value))
        for index, item in enumerate(value, start=1):
            self.walk(shape.member, item, f"{path}.{index}.member")

    def _map(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, MapShape)
        if not isinstance(value, Mapping):
            self.fail(value, path, "Member must be a map")
            return
        self._length(shape, value, path, len(value))
        for key, item in value.items():
            self.walk(shape.key, key, path)
            self.walk(shape.value, item, path)

    def _string(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(value, path, "Member must be a string")
            return
        self._length(shape, value, path, len(value))
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        text = shape.metadata.get("pattern")
        compiled = _pattern(text) if text else None
        if compiled is not None and text and not compiled.fullmatch(value):
            shown = text if text.startswith("^") else f"^{text}"
            self.fail(value, path, f"Member must satisfy regular expression pattern: {shown}")

    def _number(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(value, path, "Member must be a number")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(value, path, f"Member must have value less than or equal to {high}")

    _integer = _long = _float = _double = _number

    def _boolean(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(value, path, "Member must be a boolean")

    def _timestamp(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, dt.datetime)):
            self.fail(value, path, "Member must be a timestamp")

    def _length(self, shape: Shape, value: Any, path: str, length: int) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and length < low:
            self.fail(value, path, f"Member must have length greater than or equal to {low}")
        if high is not None and length > high:
            self.fail(value, path, f"Member must have length less than or equal to {high}")


def validate(shape: Shape | None, params: Mapping[str, Any]) -> str | None:
    """The AWS validation message for ``params`` against an input shape, or None if valid."""
    if shape is None:
        return None
    walker = _Walker()
    walker.walk(shape, params, "")
    if not walker.errors:
        return None
    count = len(walker.errors)
    noun = "error" if count == 1 else "errors"
    shown = "; ".join(walker.errors[:_MAX_REPORTED])
    return f"{count} validation {noun} detected: {shown}"
