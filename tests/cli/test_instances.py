"""The body ``dropfit predict`` sends for VALUES or CSV rows."""

from __future__ import annotations

import json

import pytest

from dropfit_cli.instances import request_body


@pytest.mark.parametrize(
    "values",
    [("5.1", "3.5", "1.4", "0.2"), ("5.1,3.5,1.4,0.2",), ("5.1, 3.5", "1.4,0.2")],
)
def test_values_are_one_json_instance_however_they_are_separated(values: tuple[str, ...]) -> None:
    body, content_type = request_body(values, None)
    assert content_type == "application/json"
    assert json.loads(body) == {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def test_negative_and_exponent_numbers_are_numbers() -> None:
    body, _ = request_body(("-1.5", "2e3"), None)
    assert json.loads(body) == {"instances": [[-1.5, 2000.0]]}


def test_csv_rows_are_sent_as_they_are() -> None:
    rows = b"Petal.Width,Sepal.Length\n0.2,5.1\n"
    assert request_body((), rows) == (rows, "text/csv")


@pytest.mark.parametrize(
    ("values", "rows", "message"),
    [
        (("5.1", "abc"), None, "value 2 ('abc') is not a number"),
        (("nan",), None, "value 1 ('nan') is not a finite number"),
        ((), None, "nothing to predict"),
        (("1",), b"1\n", "not both"),
        ((), b"  \n", "the input is empty"),
    ],
)
def test_bad_input_is_named(values: tuple[str, ...], rows: bytes | None, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        request_body(values, rows)
