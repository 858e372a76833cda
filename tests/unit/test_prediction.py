"""Predict request bodies -> feature rows -> k-NN CSV; k-NN answers -> labelled predictions."""

from __future__ import annotations

import json

import pytest
from dropfit.errors import (
    ApiError,
    BadRequest,
    ModelInferenceError,
    PayloadTooLarge,
    UnprocessableRequest,
    UnsupportedMediaType,
)
from dropfit.labels import LabelMap
from dropfit.prediction import (
    MAX_ENDPOINT_PAYLOAD,
    MAX_INSTANCES,
    parse_endpoint_answer,
    parse_instances,
    to_endpoint_csv,
)

FEATURES = ["sepal_length", "sepal_width"]
IRIS = LabelMap(("setosa", "versicolor", "virginica"))


def refusal(body: str, content_type: str | None = "application/json") -> ApiError:
    with pytest.raises(ApiError) as error:
        parse_instances(body, content_type, FEATURES)
    return error.value


# --- JSON -------------------------------------------------------------------------------------


def test_json_lists_are_rows_in_training_order() -> None:
    body = json.dumps({"instances": [[5.1, 3.5], [6, 3]]})

    assert parse_instances(body, "application/json", FEATURES) == [[5.1, 3.5], [6.0, 3.0]]


def test_json_objects_are_keyed_by_feature_name_in_any_order() -> None:
    body = json.dumps({"instances": [{"sepal_width": 3.5, "sepal_length": 5.1}, [6, 3]]})

    assert parse_instances(body, "application/json", FEATURES) == [[5.1, 3.5], [6.0, 3.0]]


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "Application/JSON; charset=utf-8"]
)
def test_json_is_the_default_and_parameters_are_ignored(content_type: str | None) -> None:
    assert parse_instances('{"instances": [[1, 2]]}', content_type, FEATURES) == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (
            '{"instances": [[1]]}',
            UnprocessableRequest,
            "instances[0] has 1 values; the model expects 2: sepal_length, sepal_width.",
        ),
        (
            '{"instances": [[1, 2], [1, 2, 3]]}',
            UnprocessableRequest,
            "instances[1] has 3 values; the model expects 2: sepal_length, sepal_width.",
        ),
        (
            '{"instances": [{"sepal_length": 1}]}',
            UnprocessableRequest,
            "instances[0] has missing sepal_width; the features are sepal_length, sepal_width.",
        ),
        (
            '{"instances": [{"sepal_length": 1, "sepal_width": 2, "petal": 3}]}',
            UnprocessableRequest,
            "instances[0] has unknown petal; the features are sepal_length, sepal_width.",
        ),
        (
            '{"instances": [{"sepal_length": 1, "petal": 3}]}',
            UnprocessableRequest,
            "instances[0] has missing sepal_width; unknown petal; the features are sepal_length, "
            "sepal_width.",
        ),
        (
            '{"instances": [["5.1", 3]]}',
            UnprocessableRequest,
            'instances[0][0] must be a number, got "5.1".',
        ),
        (
            '{"instances": [{"sepal_length": 1, "sepal_width": "wide"}]}',
            UnprocessableRequest,
            'instances[0].sepal_width must be a number, got "wide".',
        ),
        (
            '{"instances": [[true, 3]]}',
            UnprocessableRequest,
            "instances[0][0] must be a number, got true.",
        ),
        (
            '{"instances": [[null, 3]]}',
            UnprocessableRequest,
            "instances[0][0] must be a number, got null.",
        ),
        (
            '{"instances": [[1, [2]]]}',
            UnprocessableRequest,
            "instances[0][1] must be a number, got [2].",
        ),
        (
            '{"instances": [[NaN, 3]]}',
            UnprocessableRequest,
            "NaN is not a finite number; send finite feature values.",
        ),
        (
            '{"instances": [[1, Infinity]]}',
            UnprocessableRequest,
            "Infinity is not a finite number; send finite feature values.",
        ),
        (
            '{"instances": [[-Infinity, 1]]}',
            UnprocessableRequest,
            "-Infinity is not a finite number; send finite feature values.",
        ),
        (
            '{"instances": [[1e999, 1]]}',
            UnprocessableRequest,
            "instances[0][0] must be a finite number, got inf.",
        ),
        (
            '{"instances": [5]}',
            UnprocessableRequest,
            "instances[0] must be a list of 2 numbers or an object keyed by feature name.",
        ),
        ('{"instances": []}', UnprocessableRequest, "No instances to predict; send at least one."),
        ('{"instances": 5}', BadRequest, '"instances" must be a list of instances.'),
        ("[[1, 2]]", BadRequest, 'The body must be a JSON object {"instances": [...]}.'),
        ('{"rows": [[1, 2]]}', BadRequest, 'The body must be a JSON object {"instances": [...]}.'),
        (
            "not json",
            BadRequest,
            "The body is not valid JSON: Expecting value: line 1 column 1 (char 0).",
        ),
        ("", BadRequest, "The body is not valid JSON: Expecting value: line 1 column 1 (char 0)."),
        (
            '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}",
            BadRequest,
            "The JSON body is nested too deeply.",
        ),
    ],
    ids=[
        "too-few-values",
        "too-many-values",
        "missing-name",
        "unknown-name",
        "missing-and-unknown",
        "string-in-list",
        "string-in-object",
        "boolean",
        "null",
        "nested-list",
        "nan-literal",
        "infinity-literal",
        "minus-infinity-literal",
        "overflow",
        "not-list-or-object",
        "no-instances",
        "instances-not-a-list",
        "not-an-object",
        "no-instances-key",
        "not-json",
        "empty-body",
        "nested-too-deep",
    ],
)
def test_bad_json_is_refused_with_status_and_message(
    body: str, kind: type[ApiError], message: str
) -> None:
    error = refusal(body)

    assert type(error) is kind
    assert error.message == message


def test_the_status_classes() -> None:
    assert (BadRequest.status, UnprocessableRequest.status) == (400, 422)
    assert (UnsupportedMediaType.status, PayloadTooLarge.status) == (415, 413)


def test_too_many_json_instances() -> None:
    body = json.dumps({"instances": [[1, 2]] * (MAX_INSTANCES + 1)})

    error = refusal(body)

    assert isinstance(error, PayloadTooLarge)
    assert error.message == "10001 instances in one request; at most 10000 are accepted."


def test_the_maximum_number_of_instances_is_accepted() -> None:
    body = json.dumps({"instances": [[1, 2]] * MAX_INSTANCES})

    assert len(parse_instances(body, "application/json", FEATURES)) == MAX_INSTANCES


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_unsupported_media_type(content_type: str) -> None:
    error = refusal('{"instances": [[1, 2]]}', content_type)

    assert isinstance(error, UnsupportedMediaType)
    assert error.message == (
        f"Content type {content_type!r} is not supported; send application/json or text/csv."
    )


# --- CSV -------------------------------------------------------------------------------------


def test_csv_without_header_is_in_training_order() -> None:
    assert parse_instances("5.1,3.5\n6, 3\r\n\n", "text/csv", FEATURES) == [[5.1, 3.5], [6.0, 3.0]]


def test_csv_with_a_header_in_any_order_is_reordered() -> None:
    body = '"sepal_width",sepal_length\n3.5,5.1\n3,6\n'

    assert parse_instances(body, "text/csv; charset=utf-8", FEATURES) == [[5.1, 3.5], [6.0, 3.0]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,2,3\n", "CSV row 1 has 3 values; the model expects 2: sepal_length, sepal_width."),
        ("1,2\n4\n", "CSV row 2 has 1 values; the model expects 2: sepal_length, sepal_width."),
        ("1,wide\n", "CSV row 1, column 'sepal_width': 'wide' is not a finite decimal number."),
        ("1,nan\n", "CSV row 1, column 'sepal_width': 'nan' is not a finite decimal number."),
        ("-inf,1\n", "CSV row 1, column 'sepal_length': '-inf' is not a finite decimal number."),
        ("1_000,1\n", "CSV row 1, column 'sepal_length': '1_000' is not a finite decimal number."),
        ("1e999,1\n", "CSV row 1, column 'sepal_length' must be a finite number."),
        ("\n \n", "No instances to predict; send at least one."),
        ("sepal_length,sepal_width\n", "No instances to predict; send at least one."),
        # with a reordered header, errors name the column the value is in
        (
            "sepal_width,sepal_length\n3,long\n",
            "CSV row 1, column 'sepal_length': 'long' is not a finite decimal number.",
        ),
        (
            "sepal_width,sepal_length\ninf,3\n",
            "CSV row 1, column 'sepal_width': 'inf' is not a finite decimal number.",
        ),
    ],
)
def test_bad_csv_is_unprocessable_with_its_row_and_column(body: str, message: str) -> None:
    error = refusal(body, "text/csv")

    assert isinstance(error, UnprocessableRequest)
    assert error.message == message


@pytest.mark.parametrize(
    ("body", "content_type", "where"),
    [
        ('{"instances": [[1e39, 1]]}', "application/json", "instances[0][0] = 1e+39"),
        (
            '{"instances": [{"sepal_length": 1, "sepal_width": -4e38}]}',
            "application/json",
            "instances[0].sepal_width = -4e+38",
        ),
        ("1,1e300\n", "text/csv", "CSV row 1, column 'sepal_width' = '1e300'"),
    ],
)
def test_values_beyond_float32_are_refused_before_the_model_sees_them(
    body: str, content_type: str, where: str
) -> None:
    error = refusal(body, content_type)

    assert isinstance(error, UnprocessableRequest)
    assert error.message == (
        f"{where} is too large: the k-NN model computes in 32-bit floats "
        "(at most about 3.4e38 in magnitude)."
    )


def test_quoted_csv_numbers_are_numbers() -> None:
    rows = parse_instances('"5.1", "3.5"\n', "text/csv", ["sepal_length", "sepal_width"])

    assert rows == [[5.1, 3.5]]


def test_too_many_csv_instances() -> None:
    error = refusal("1,2\n" * (MAX_INSTANCES + 1), "text/csv")

    assert isinstance(error, PayloadTooLarge)


# --- to the endpoint ----------------------------------------------------------------------


def test_endpoint_csv_keeps_every_digit() -> None:
    rows = [[0.1 + 0.2, 1e-300], [5.0, 123456789.123456789]]

    payload = to_endpoint_csv(rows)

    assert payload == b"0.30000000000000004,1e-300\n5.0,123456789.12345679"
    parsed = [[float(cell) for cell in line.split(",")] for line in payload.decode().splitlines()]
    assert parsed == rows


def four_mb_of_rows(extra_digits: int) -> list[list[float]]:
    """'10.0' then '1.0' rows: exactly 4 MB with the newlines, plus ``extra_digits`` bytes."""
    first = float("1" + "0" * (1 + extra_digits))
    return [[first]] + [[1.0]] * (MAX_ENDPOINT_PAYLOAD // 4 - 1)


def test_endpoint_csv_of_exactly_4_mb_is_accepted() -> None:
    assert len(to_endpoint_csv(four_mb_of_rows(0))) == MAX_ENDPOINT_PAYLOAD


def test_endpoint_csv_over_4_mb_is_refused() -> None:
    with pytest.raises(PayloadTooLarge) as error:
        to_endpoint_csv(four_mb_of_rows(1))

    assert error.value.message == (
        f"The instances make a {MAX_ENDPOINT_PAYLOAD + 1} byte request; the endpoint accepts at "
        f"most {MAX_ENDPOINT_PAYLOAD} bytes. Split them into smaller requests."
    )


# --- from the endpoint ----------------------------------------------------------------------


def test_plain_answers_decode_through_the_label_map() -> None:
    body = json.dumps({"predictions": [{"predicted_label": 2.0}, {"predicted_label": 0.0}]})

    predictions = parse_endpoint_answer(body.encode(), 2, IRIS, verbose=False)

    assert predictions == [{"label": "virginica"}, {"label": "setosa"}]


def test_verbose_answers_carry_labelled_neighbors() -> None:
    body = json.dumps(
        {
            "predictions": [
                {
                    "predicted_label": 1.0,
                    "distances": [0.1, 0.25, 0.5],
                    "labels": [1.0, 1.0, 2.0],
                }
            ]
        }
    )

    (prediction,) = parse_endpoint_answer(body.encode(), 1, IRIS, verbose=True)

    assert prediction == {
        "label": "versicolor",
        "neighbors": [
            {"label": "versicolor", "distance": 0.1},
            {"label": "versicolor", "distance": 0.25},
            {"label": "virginica", "distance": 0.5},
        ],
    }


def test_regressor_answers_are_floats() -> None:
    body = json.dumps(
        {"predictions": [{"predicted_label": 3.75, "labels": [3.5, 4], "distances": [0, 1.5]}]}
    )

    (prediction,) = parse_endpoint_answer(body.encode(), 1, None, verbose=True)

    assert prediction == {
        "label": 3.75,
        "neighbors": [{"label": 3.5, "distance": 0.0}, {"label": 4.0, "distance": 1.5}],
    }
    assert isinstance(prediction["neighbors"][1]["label"], float)


def test_an_overflowed_distance_is_null_so_the_answer_stays_json() -> None:
    # Features near 1e20 pass validation, but their squared distances overflow 32-bit floats:
    # the k-NN answers Infinity (Python's json reads it), which JSON itself cannot carry.
    answer = '{"predicted_label": 0.0, "labels": [0.0, 1.0], "distances": [Infinity, 2.5]}'
    body = f'{{"predictions": [{answer}]}}'.encode()

    (prediction,) = parse_endpoint_answer(body, 1, IRIS, verbose=True)

    assert prediction["neighbors"] == [
        {"label": "setosa", "distance": None},
        {"label": "versicolor", "distance": 2.5},
    ]
    assert json.loads(json.dumps(prediction, allow_nan=False)) == prediction


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
def test_a_non_finite_regression_answer_is_a_model_error(value: str) -> None:
    body = f'{{"predictions": [{{"predicted_label": {value}}}]}}'.encode()

    with pytest.raises(ModelInferenceError, match=r"non-finite prediction") as error:
        parse_endpoint_answer(body, 1, None, verbose=False)
    assert error.value.status == 502


def test_a_count_mismatch_is_an_error() -> None:
    body = json.dumps({"predictions": [{"predicted_label": 1.0}]})

    with pytest.raises(ValueError, match=r"the endpoint returned 1 predictions for 2 rows"):
        parse_endpoint_answer(body.encode(), 2, IRIS, verbose=False)


def test_a_label_outside_the_map_is_an_error() -> None:
    body = json.dumps({"predictions": [{"predicted_label": 3.0}]})

    with pytest.raises(ValueError, match=r"outside the label map"):
        parse_endpoint_answer(body.encode(), 1, IRIS, verbose=False)


# --- numeric feature names, byte-order marks, huge numbers, small errors ----------------------

NUMBERED = ["0", "1"]  # pandas' header for unnamed columns


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        ("1,0\n0,1\n", [[1.0, 0.0], [0.0, 1.0]]),
        ("1,0\n", [[1.0, 0.0]]),
        ('"1","0"\n', [[1.0, 0.0]]),
        ("0,1\n1,0\n", [[1.0, 0.0]]),  # the feature names exactly: the header
        ('"0","1"\n1,0\n', [[1.0, 0.0]]),
    ],
    ids=["reordered-names-are-data", "one-row", "quoted-row", "exact-header", "quoted-header"],
)
def test_a_row_of_numbers_is_data_unless_it_is_the_feature_names_exactly(
    body: str, rows: list[list[float]]
) -> None:
    assert parse_instances(body, "text/csv", NUMBERED) == rows


def test_a_header_that_is_not_all_numbers_may_reorder_numbered_features() -> None:
    assert parse_instances("x,0\n1,2\n", "text/csv", ["0", "x"]) == [[2.0, 1.0]]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("\ufeff5.1,3.5\n", "text/csv"),
        ("\ufeffsepal_length,sepal_width\n5.1,3.5\n", "text/csv"),
        ('\ufeff{"instances": [[5.1, 3.5]]}', "application/json"),
    ],
    ids=["csv", "csv-header", "json"],
)
def test_a_byte_order_mark_is_ignored(body: str, content_type: str) -> None:
    assert parse_instances(body, content_type, FEATURES) == [[5.1, 3.5]]


@pytest.mark.parametrize("digits", [39, 309, 400, 4_300, 4_301, 5_000, 100_000])
@pytest.mark.parametrize("sign", ["", "-"])
def test_a_huge_json_integer_is_unprocessable_and_named(digits: int, sign: str) -> None:
    number = sign + "9" * digits
    shown = f"{number[:12]}… ({len(number):,} characters)"

    as_list = refusal('{"instances": [[' + number + ", 1]]}")
    as_object = refusal('{"instances": [{"sepal_length": 1, "sepal_width": ' + number + "}]}")

    assert isinstance(as_list, UnprocessableRequest)
    assert as_list.message.startswith(f"instances[0][0] = {shown} is too large")
    assert isinstance(as_object, UnprocessableRequest)
    assert as_object.message.startswith(f"instances[0].sepal_width = {shown} is too large")


def test_a_huge_integer_outside_the_instances_is_ignored() -> None:
    body = '{"instances": [[1, 2]], "note": ' + "9" * 5_000 + "}"

    assert parse_instances(body, "application/json", FEATURES) == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("1e400", "instances[0][0] must be a finite number, got inf."),
        ("-1e99999999999", "instances[0][0] must be a finite number, got -inf."),
        ("1" + "0" * 400 + ".5", "instances[0][0] must be a finite number, got inf."),
    ],
)
def test_huge_json_decimals_are_unprocessable(number: str, message: str) -> None:
    error = refusal('{"instances": [[' + number + ", 1]]}")

    assert isinstance(error, UnprocessableRequest)
    assert error.message == message


def test_tiny_json_decimals_are_zero() -> None:
    assert parse_instances('{"instances": [[1e-400, 1]]}', None, FEATURES) == [[0.0, 1.0]]


def test_a_huge_csv_number_is_named_briefly() -> None:
    error = refusal(f"1,{'9' * 300}\n", "text/csv")

    assert error.message.startswith(
        f"CSV row 1, column 'sepal_width' = '{'9' * 12}… (300 characters)' is too large"
    )


WIDE = [f"{i:04d}" + "特征" * 62 for i in range(1_000)]  # 1,000 names of 128 characters


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"instances": [[1.0]]}), "application/json"),
        (json.dumps({"instances": [{WIDE[0]: 1.0}]}), "application/json"),
        (json.dumps({"instances": [{f"x{i}" * 100: 1 for i in range(1_000)}]}), None),
        (json.dumps({"instances": [["x" * 10_000] * 1_000]}), None),
        ("1,2\n", "text/csv"),
        (",".join(["1"] * 999 + ["y" * 10_000]), "text/csv"),
        (",".join(["1"] * 999 + ["9" * 10_000]), "text/csv"),
    ],
    ids=["wrong-width", "missing", "unknown", "long-value", "csv-width", "csv-value", "csv-huge"],
)
def test_errors_on_a_wide_model_stay_small(body: str, content_type: str | None) -> None:
    with pytest.raises(UnprocessableRequest) as error:
        parse_instances(body, content_type, WIDE)

    shown = json.dumps({"error": {"code": error.value.code, "message": error.value.message}})
    assert len(shown) <= 8 * 1024, error.value.message[:300]
    assert "more" in error.value.message or "characters" in error.value.message
