"""Uploads too big to commit, made at test time from a few lines each.

``cases.yaml`` names them with ``generate: <function name>``; each returns the upload's bytes.
"""

from __future__ import annotations

from collections.abc import Callable

HUGE_FIELD_BYTES = 5 * 1024 * 1024
_ROWS = b"1,2,p\n2,3,p\n3,4,q\n4,5,q\n5,6,p\n6,7,q\n"


def huge_feature_field() -> bytes:
    """A 5 MiB unquoted value in a feature column (data row 2)."""
    return b"a,b,label\n1,2,p\n2," + b"9x" * (HUGE_FIELD_BYTES // 2) + b",p\n" + _ROWS


def huge_quoted_label() -> bytes:
    """A 5 MiB quoted class name, commas and newlines inside, in data row 3."""
    blob = b'"' + b"spam, eggs\n" * (HUGE_FIELD_BYTES // 11) + b'"'
    return b"a,b,label\n1,2,p\n2,3,p\n3,4," + blob + b"\n" + _ROWS


def huge_header_name() -> bytes:
    """A header whose second column name is 1 MiB long."""
    return b"a," + b"n" * (1024 * 1024) + b",label\n" + _ROWS


def too_many_columns() -> bytes:
    """1,001 feature columns (the limit is 1,000) and a label."""
    names = ",".join(f"f{i}" for i in range(1001)) + ",label\n"
    row = ",".join("1" for _ in range(1001))
    return (names + "".join(f"{row},{label}\n" for label in "ppqq")).encode()


def fifty_thousand_columns() -> bytes:
    """50,000 columns: refused from the header alone, without reading the rows."""
    names = ",".join(f"f{i}" for i in range(49_999)) + ",label\n"
    row = ",".join("0" for _ in range(49_999))
    return (names + f"{row},p\n{row},q\n").encode()


def too_many_classes() -> bytes:
    """1,001 classes of 2 rows each (the limit is 1,000 classes)."""
    rows = "".join(f"{i},{j},c{i}\n" for i in range(1001) for j in range(2))
    return ("a,b,label\n" + rows).encode()


GENERATORS: dict[str, Callable[[], bytes]] = {
    function.__name__: function
    for function in (
        huge_feature_field,
        huge_quoted_label,
        huge_header_name,
        too_many_columns,
        fifty_thousand_columns,
        too_many_classes,
    )
}
