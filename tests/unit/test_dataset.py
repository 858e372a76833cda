"""Formatting an upload: what the tutorial does by hand, and an exact message for each bad file."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from dropfit.dataset import (
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_NAME_LENGTH,
    FormattedDataset,
    format_dataset,
)
from dropfit.errors import InvalidUpload
from dropfit.options import UploadOptions
from sklearn.model_selection import train_test_split

DEFAULT_K = 3
# 8 rows, 2 classes of 4: the default split keeps 6 for training, 2 for testing
VALID = "a,b,label\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(8))


def fmt(data: str | bytes, **options: object) -> FormattedDataset:
    raw = data.encode() if isinstance(data, str) else data
    return format_dataset(raw, UploadOptions(**options), DEFAULT_K)  # type: ignore[arg-type]


def error_of(data: str | bytes, **options: object) -> str:
    with pytest.raises(InvalidUpload) as error:
        fmt(data, **options)
    return error.value.message


def rows_of(channel: bytes) -> list[list[str]]:
    return [line.split(",") for line in channel.decode().splitlines()]


# --- the tutorial's iris ------------------------------------------------------------------


@pytest.fixture
def iris(iris_csv: bytes) -> FormattedDataset:
    return format_dataset(iris_csv, UploadOptions(), DEFAULT_K)


def tutorial_split(iris_csv: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tutorial by hand: classes to ints, label first, train_test_split(random_state=0)."""
    frame = pd.read_csv(io.BytesIO(iris_csv))
    frame["Species"] = frame["Species"].map({"setosa": 0, "versicolor": 1, "virginica": 2})
    frame = frame[["Species", *[c for c in frame.columns if c != "Species"]]]
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    return train, test


def test_iris_channels_equal_the_tutorials_split_value_for_value_in_upload_order(
    iris: FormattedDataset, iris_csv: bytes
) -> None:
    expected_train, expected_test = tutorial_split(iris_csv)

    train = pd.read_csv(io.BytesIO(iris.train_csv), header=None)
    test = pd.read_csv(io.BytesIO(iris.test_csv), header=None)

    # The same rows as train_test_split, in the upload's order rather than the shuffled one
    # (streaming cannot reorder without holding the file; k-NN does not depend on the order).
    np.testing.assert_array_equal(train.to_numpy(), expected_train.sort_index().to_numpy())
    np.testing.assert_array_equal(test.to_numpy(), expected_test.sort_index().to_numpy())


def test_iris_channels_are_header_less_with_integer_labels_first(iris: FormattedDataset) -> None:
    train_rows = rows_of(iris.train_csv)
    test_rows = rows_of(iris.test_csv)

    assert (len(train_rows), len(test_rows)) == (112, 38)
    assert all(len(row) == 5 for row in train_rows + test_rows)
    assert {row[0] for row in train_rows + test_rows} == {"0", "1", "2"}
    assert not iris.train_csv.decode()[0].isalpha()  # no header row
    assert iris.train_csv.endswith(b"\n")


def test_iris_metadata_describes_the_model(iris: FormattedDataset) -> None:
    meta = iris.metadata

    assert meta.label_column == "Species"
    assert meta.feature_names == ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]
    assert meta.predictor_type == "classifier"
    assert meta.classes == ["setosa", "versicolor", "virginica"]
    assert (meta.n_rows, meta.n_train, meta.n_test) == (150, 112, 38)
    assert (meta.test_fraction, meta.random_state) == (0.25, 0)
    assert (meta.k, meta.sample_size) == (DEFAULT_K, 112)
    assert json.loads(meta.to_json())["classes"] == ["setosa", "versicolor", "virginica"]


def test_iris_hyperparameters_come_from_the_data(iris: FormattedDataset) -> None:
    assert iris.hyperparameters() == {
        "feature_dim": "4",
        "k": "3",
        "sample_size": "112",
        "predictor_type": "classifier",
    }


def test_options_set_k_sample_size_and_fraction(iris_csv: bytes) -> None:
    formatted = format_dataset(
        iris_csv, UploadOptions(k=5, sample_size=50, test_fraction=0.2), DEFAULT_K
    )

    meta = formatted.metadata
    assert (meta.n_train, meta.n_test, meta.k, meta.sample_size) == (120, 30, 5, 50)
    assert len(rows_of(formatted.train_csv)) == 120


# --- choosing the label -----------------------------------------------------------------------


def test_the_label_option_picks_a_numeric_column() -> None:
    formatted = fmt(
        VALID.replace("x", "1").replace("y", "2"), label="a", predictor_type="regressor"
    )

    assert formatted.metadata.label_column == "a"
    assert formatted.metadata.feature_names == ["b", "label"]


def test_the_label_option_matches_case_insensitively() -> None:
    assert fmt(VALID, label="LABEL").metadata.label_column == "label"


def test_an_exact_label_match_wins_over_case_folding() -> None:
    data = "Label,label,c\n" + "".join(f"{i},{'pq'[i % 2]},{i * 2}\n" for i in range(8))

    assert fmt(data, label="label").metadata.label_column == "label"


def test_a_label_matching_several_columns_when_folded_is_ambiguous() -> None:
    data = "Ab,aB,c\n1,2,3\n"

    assert error_of(data, label="ab") == (
        "Label column 'ab' matches several columns when case is ignored (Ab, aB); "
        "give its exact name with label=<column>."
    )


def test_the_only_non_numeric_column_is_the_label_wherever_it_is() -> None:
    data = "name,a,b\n" + "".join(f"{'xy'[i % 2]},{i},{i * 3}\n" for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.label_column == "name"
    assert formatted.metadata.feature_names == ["a", "b"]


def test_without_a_non_numeric_column_the_last_column_is_the_label() -> None:
    data = "a,b,c\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.label_column == "c"
    assert formatted.metadata.feature_names == ["a", "b"]


def test_several_non_numeric_columns_are_named() -> None:
    data = "a,colour,shape\n1,red,round\n2,blue,square\n"

    assert error_of(data) == (
        "Columns colour, shape are not numeric, but only the label may be: features must be "
        "numbers. If one of them is the label, name it with the metadata option label=<column>."
    )


def test_missing_label_column_lists_the_columns() -> None:
    assert error_of(VALID, label="species") == (
        "Label column 'species' was not found; the columns are a, b, label."
    )


# --- predictor type -----------------------------------------------------------------------------


def test_a_fractional_numeric_label_makes_a_regressor() -> None:
    data = "a,price\n" + "".join(f"{i},{i + 0.5}\n" for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.predictor_type == "regressor"
    assert formatted.metadata.classes is None
    labels = sorted(float(row[0]) for row in rows_of(formatted.train_csv + formatted.test_csv))
    assert labels == [i + 0.5 for i in range(8)]


def test_an_integer_numeric_label_makes_a_classifier_in_numeric_order() -> None:
    data = "a,grade\n" + "".join(f"{i},{(2, 10)[i % 2]}\n" for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.predictor_type == "classifier"
    assert formatted.metadata.classes == ["2", "10"]  # 2 < 10, not "10" < "2"
    train = pd.read_csv(io.BytesIO(formatted.train_csv), header=None)
    # feature i has grade 2 when i is even -> class 0
    assert all(int(row[0]) == int(row[1]) % 2 for row in train.to_numpy())


def test_equal_numbers_written_differently_are_one_class() -> None:
    data = "a,grade\n" + "".join(f"{i},{('3', '3.0', '03', '4')[i % 4]}\n" for i in range(8))

    assert fmt(data).metadata.classes == ["3", "4"]


def test_fractional_numbers_as_classes_are_named_by_their_value() -> None:
    data = "a,grade\n" + "".join(f"{i},{('1.5', '2.50')[i % 2]}\n" for i in range(8))

    formatted = fmt(data, predictor_type="classifier")

    assert formatted.metadata.classes == ["1.5", "2.5"]
    assert {row[0] for row in rows_of(formatted.train_csv + formatted.test_csv)} == {"0", "1"}


def test_predictor_type_option_overrides_the_inference() -> None:
    data = "a,grade\n" + "".join(f"{i},{i % 3}\n" for i in range(9))

    formatted = fmt(data, predictor_type="regressor")

    assert formatted.metadata.predictor_type == "regressor"
    assert formatted.metadata.classes is None


def test_a_regressor_needs_a_numeric_label() -> None:
    assert error_of(VALID, predictor_type="regressor") == (
        "Label column 'label' has a non-numeric value 'x' in data row 1; labels must be finite "
        "numbers."
    )


# --- accepted variations of CSV -------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    formatted = fmt(b"\xef\xbb\xbf" + VALID.encode())

    assert formatted.metadata.feature_names == ["a", "b"]
    assert formatted.metadata.label_column == "label"


def test_a_quoted_newline_inside_a_value_is_part_of_the_value() -> None:
    data = "a,label\n" + "".join(f'{i},"{("two\nlines", "one")[i % 2]}"\n' for i in range(8))

    assert fmt(data).metadata.classes == ["one", "two\nlines"]


def test_blank_lines_crlf_and_spaces_around_values_are_tolerated() -> None:
    data = "\r\n a , b ,label\r\n" + "".join(
        f" {i} , {i * 2} ,{'xy'[i % 2]}\r\n\r\n" for i in range(8)
    )

    formatted = fmt(data)

    assert formatted.metadata.feature_names == ["a", "b"]
    assert formatted.metadata.n_rows == 8


def test_header_and_data_rows_agree_on_a_quoted_comma_after_a_space() -> None:
    data = 'a, "b,c"\n' + "".join(f'{i}, "{"xy"[i % 2]}"\n' for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.feature_names == ["a"]
    assert formatted.metadata.label_column == "b,c"


# --- every bad upload, with its message -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty; upload a CSV with a header row and data rows."),
        (b" \n\t\r\n  ", "The file is empty; upload a CSV with a header row and data rows."),
        (b"a,b,label\n", "The file has a header but no data rows."),
        (b"a,b,label\n\n\n", "The file has a header but no data rows."),
        (
            b"a,b\n1,\x002\n",
            "The file looks binary (it contains NUL bytes); upload comma-separated UTF-8 text.",
        ),
        (
            b"a,b\n1,caf\xe9\n",
            "The file is not UTF-8 text: byte 0xe9 at offset 9 cannot be decoded. "
            "Save the CSV as UTF-8.",
        ),
        (
            b"a;b;label\n1;2;x\n",
            "Only one column was found and the header contains semicolons: the file seems to be "
            "semicolon-separated. Dropfit reads comma-separated CSV.",
        ),
        (
            b"a\tb\tlabel\n1\t2\tx\n",
            "Only one column was found and the header contains tabs: the file seems to be "
            "tab-separated. Dropfit reads comma-separated CSV.",
        ),
        (
            b"label\nx\ny\n",
            "The CSV has a single column; it needs at least one feature column and a label column.",
        ),
        (b"a,,label\n1,2,x\n", "Column 2 of the header has no name; name every column."),
        (
            b"a,b,a\n1,2,x\n",
            "Column name 'a' appears more than once; names must be unique.",
        ),
        (
            b"a, b,b \n1,2,x\n",
            "Column name 'b' appears more than once; names must be unique.",
        ),
        (
            b"5.1,3.5,0\n4.9,3.0,0\n7.0,3.2,1\n6.4,3.2,1\n",
            "The first line looks like data, not a header (every field in it is a number); the "
            "CSV needs a header row naming the columns.",
        ),
    ],
    ids=[
        "empty",
        "whitespace-only",
        "header-only",
        "header-and-blank-lines",
        "binary",
        "not-utf8",
        "semicolons",
        "tabs",
        "single-column",
        "empty-column-name",
        "duplicate-column-names",
        "duplicate-after-trimming",
        "header-less",
    ],
)
def test_a_bad_file_is_refused_with_its_reason(data: bytes, message: str) -> None:
    assert error_of(data) == message


@pytest.mark.parametrize(
    "header",
    ["1e3, -2 ,+.5", '"1","2","3"', "1,2,inf"],
    ids=["spaced-and-exponent", "quoted", "infinite"],
)
def test_a_first_line_of_numbers_however_written_is_no_header(header: str) -> None:
    data = header + "\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(8))

    assert error_of(data).startswith("The first line looks like data, not a header")


def test_iris_without_its_header_is_refused_not_trained_on_a_lost_first_row() -> None:
    rows = ["5.1,3.5,1.4,0.2,setosa", "4.9,3.0,1.4,0.2,setosa", "7.0,3.2,4.7,1.4,versicolor"]
    data = "\n".join(rows * 4) + "\n"

    assert error_of(data) == (
        "The first line looks like data, not a header: the feature columns are named with "
        "numbers and the label column's name 'setosa' is one of its own classes. The CSV needs "
        "a header row naming the columns."
    )


def test_numbered_features_with_a_named_label_are_a_header() -> None:
    # e.g. spectra: one column per wavelength
    data = "400,410,420,species\n" + "".join(
        f"{i},{i + 1},{i + 2},{'ab'[i % 2]}\n" for i in range(8)
    )

    assert fmt(data).metadata.feature_names == ["400", "410", "420"]


def test_a_header_of_numeric_names_with_one_word_is_a_header() -> None:
    # wavelengths as feature names, say: one name that is no number makes the line a header
    data = "400,410.5,species\n" + "".join(f"{i}.5,{i * 2},{'xy'[i % 2]}\n" for i in range(8))

    formatted = fmt(data)

    assert formatted.metadata.feature_names == ["400", "410.5"]
    assert formatted.metadata.n_rows == 8


def test_a_row_longer_than_the_header_names_its_line() -> None:
    data = VALID + "8,16,x,extra\n"

    assert error_of(data) == (
        "Line 10 has 4 fields but the header has 3 (ragged rows); quote values that contain commas."
    )


def test_a_first_row_longer_than_the_header_is_refused_not_shifted() -> None:
    # pandas would silently turn the extra leading field of such rows into an index
    data = "a,label\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(8))

    assert error_of(data) == (
        "Data row 1 (line 2) has 3 fields but the header has 2 (ragged rows)."
    )


def test_rows_longer_than_the_header_are_refused_even_when_the_line_cannot_be_named() -> None:
    # a cell beyond the csv module's field limit: pandas reads it, the line finder cannot
    data = "a,b\n" + "x" * 200_000 + ",2,3\n4,5,6\n"

    assert error_of(data) == "The data rows do not have the 2 fields of the header (ragged rows)."


def test_an_empty_cell_is_named_even_when_the_line_finder_gives_up() -> None:
    data = "a,b\n1," + "x" * 200_000 + "\n4,\n"

    assert error_of(data).startswith("Column 'b' is empty in data row 2.")


def test_a_row_shorter_than_the_header_names_its_data_row_and_line() -> None:
    data = "a,b,label\n0,0,x\n\n1,2,y\n3,6\n4,8,x\n"

    assert error_of(data) == "Data row 3 (line 5) has 2 fields but the header has 3 (ragged rows)."


def test_an_empty_cell_is_a_missing_value_not_imputed() -> None:
    data = VALID.replace("3,6,y", "3,,y")

    assert error_of(data) == (
        "Column 'b' is empty in data row 4. Missing values are not imputed: fill them in or drop "
        "those rows before uploading."
    )


def test_an_empty_label_cell_is_a_missing_value() -> None:
    data = VALID.replace("3,6,y", "3,6,  ")

    assert error_of(data, label="label").startswith("Column 'label' is empty in data row 4.")


def test_a_non_numeric_feature_names_column_row_and_value() -> None:
    data = VALID.replace("5,10,y", "5,ten,y")

    assert error_of(data, label="label") == (
        "Feature column 'b' has a non-numeric value 'ten' in data row 6; features must be finite "
        "numbers."
    )


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite_features_are_refused(value: str) -> None:
    data = VALID.replace("5,10,y", f"5,{value},y")

    assert error_of(data, label="label") == (
        f"Feature column 'b' has a non-finite value {value!r} in data row 6; features must be "
        "finite numbers."
    )


def test_without_a_label_option_a_nan_cell_is_named_not_taken_for_text() -> None:
    data = VALID.replace("5,10,y", "5,NaN,y")

    assert error_of(data).startswith("Feature column 'b' has a non-finite value 'NaN' in data row")


def test_a_non_finite_regression_target_is_refused() -> None:
    data = "a,price\n" + "".join(f"{i},{i + 0.5}\n" for i in range(8)).replace("3.5", "inf")

    assert error_of(data, predictor_type="regressor") == (
        "Label column 'price' has a non-finite value 'inf' in data row 4; labels must be finite "
        "numbers."
    )


def test_one_class_is_not_a_classifier() -> None:
    data = "a,label\n" + "".join(f"{i},x\n" for i in range(8))

    assert error_of(data) == (
        "Label column 'label' has only one class ('x'); a classifier needs at least 2 classes."
    )


def test_a_class_with_a_single_row_is_named() -> None:
    data = VALID + "8,16,rare\n"

    assert error_of(data) == (
        "Class 'rare' of label column 'label' has a single row; every class needs at least 2 rows "
        "so that training can see it."
    )


def test_more_classes_than_training_rows() -> None:
    data = "a,label\n" + "".join(f"{i},c{i}\n" for i in range(6))

    assert error_of(data) == "Label column 'label' has 6 classes but only 4 training rows."


def test_too_many_classes() -> None:
    n = MAX_CLASSES + 1
    data = "a,label\n" + "".join(f"{i},c{i % n}\n" for i in range(2 * n))

    assert error_of(data) == (
        f"Label column 'label' has {n} classes; at most {MAX_CLASSES} are supported. For a "
        "numeric target use predictor_type=regressor."
    )


def test_too_many_features() -> None:
    header = ",".join(f"f{i}" for i in range(MAX_FEATURES + 2))
    data = header + "\n" + ",".join("1" for _ in range(MAX_FEATURES + 2)) + "\n"

    assert error_of(data) == (
        f"The CSV has {MAX_FEATURES + 1} feature columns; at most {MAX_FEATURES} are supported."
    )


def test_the_maximum_number_of_features_is_accepted() -> None:
    header = ",".join(f"f{i}" for i in range(MAX_FEATURES + 1))
    rows = "".join(",".join(str(i) for _ in range(MAX_FEATURES + 1)) + "\n" for i in range(4))

    assert len(fmt(header + "\n" + rows + rows).metadata.feature_names) == MAX_FEATURES


def test_an_over_long_column_name() -> None:
    data = f"a,{'n' * (MAX_NAME_LENGTH + 1)}\n1,x\n"

    assert error_of(data) == (
        f"Column 2 has a name of {MAX_NAME_LENGTH + 1} characters; at most {MAX_NAME_LENGTH} are "
        "allowed."
    )


def test_an_over_long_class_name() -> None:
    long = "c" * (MAX_NAME_LENGTH + 1)
    data = VALID.replace(",y\n", f",{long}\n")

    assert error_of(data) == (
        f"Label column 'label' has a class name of {MAX_NAME_LENGTH + 1} characters in data row "
        f"2; at most {MAX_NAME_LENGTH} are allowed."
    )


def test_k_larger_than_the_training_set() -> None:
    assert error_of(VALID, k=7) == (
        "k=7 is larger than the 6 training points the model will hold; use k <= 6."
    )


def test_k_larger_than_the_sample_size() -> None:
    assert error_of(VALID, k=4, sample_size=3) == (
        "k=4 is larger than the 3 training points the model will hold; use k <= 3."
    )


def test_k_equal_to_the_training_set_is_accepted() -> None:
    assert fmt(VALID, k=6).metadata.k == 6


def test_sample_size_larger_than_the_training_set() -> None:
    assert error_of(VALID, sample_size=7) == (
        "Option sample_size=7 is larger than the training set (6 rows)."
    )


def test_too_few_rows_for_the_split() -> None:
    assert error_of("a,label\n1,x\n") == (
        "Too few rows to split: 1 data row(s) with test_fraction=0.25 leave 0 for training and 1 "
        "for testing; both need at least 1 row."
    )


def test_an_unterminated_quote_is_not_valid_csv() -> None:
    assert error_of(VALID + '8,"16,x\n').startswith("The file is not valid CSV:")


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (
            VALID.replace("5,10,y", "5,1e300,y"),
            {},
            "Feature column 'b' has the value '1e300' in data row 6: too large for the 32-bit "
            "floats k-NN computes in (at most about 3.4e38 in magnitude).",
        ),
        (
            "a,price\n" + "".join(f"{i},{i + 0.5}\n" for i in range(8)).replace("3.5", "-4e38"),
            {"predictor_type": "regressor"},
            "Label column 'price' has the value '-4e38' in data row 4: too large for the 32-bit "
            "floats k-NN computes in (at most about 3.4e38 in magnitude).",
        ),
    ],
)
def test_values_beyond_float32_are_refused_before_training(
    data: str, options: dict[str, object], message: str
) -> None:
    assert error_of(data, **options) == message


def test_the_largest_float32_values_are_accepted() -> None:
    formatted = fmt(VALID.replace("5,10,y", "5,3.4e38,y"))

    assert formatted.metadata.n_rows == 8
