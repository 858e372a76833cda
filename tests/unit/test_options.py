"""Per-upload options from S3 user metadata: validated strictly before any money is spent."""

from __future__ import annotations

import pytest
from dropfit.errors import InvalidUpload
from dropfit.options import K_MAX, Defaults, UploadOptions, parse_options, requested_model_name


def error_of(metadata: dict[str, str]) -> str:
    with pytest.raises(InvalidUpload) as error:
        parse_options(metadata)
    return error.value.message


def test_no_metadata_gives_the_defaults() -> None:
    assert parse_options({}) == UploadOptions()
    assert UploadOptions().test_fraction == 0.25


def test_every_option_is_parsed() -> None:
    options = parse_options(
        {
            "name": " iris-2 ",
            "label": " Species ",
            "k": " 5 ",
            "predictor_type": "Regressor",
            "test_fraction": "0.2",
            "sample_size": "100",
            "hp-index_metric": "COSINE",
        }
    )

    assert options == UploadOptions(
        name="iris-2",
        label="Species",
        k=5,
        predictor_type="regressor",
        test_fraction=0.2,
        sample_size=100,
        extra_hyperparameters={"index_metric": "COSINE"},
    )


@pytest.mark.parametrize(
    "key", ["predictor_type", "predictor-type", "PREDICTOR-TYPE", " Predictor_Type "]
)
def test_keys_fold_case_and_dashes(key: str) -> None:
    assert parse_options({key: "classifier"}).predictor_type == "classifier"


def test_dashed_keys_of_numeric_options() -> None:
    options = parse_options({"Test-Fraction": "0.5", "sample-size": "7"})

    assert (options.test_fraction, options.sample_size) == (0.5, 7)


def test_hyperparameters_pass_through_with_dashes_folded() -> None:
    options = parse_options({"HP-index-type": "faiss.IVFFlat", "hp-faiss_index_nprobe": "4"})

    assert options.extra_hyperparameters == {
        "index_type": "faiss.IVFFlat",
        "faiss_index_nprobe": "4",
    }
    assert options.as_record()["hyperparameters"] == options.extra_hyperparameters


@pytest.mark.parametrize(
    "name", ["k", "feature_dim", "predictor_type", "sample_size", "feature-dim"]
)
def test_reserved_hyperparameters_are_refused(name: str) -> None:
    folded = name.replace("-", "_")

    assert error_of({f"hp-{name}": "3"}) == (
        f"Hyperparameter {folded} is set by Dropfit from the data and the options "
        f"(k, predictor_type, sample_size); use those instead of 'hp-{name}'."
    )


@pytest.mark.parametrize("key", ["hp-", "hp-bad name", "hp-" + "x" * 65, "hp-semi;colon"])
def test_invalid_hyperparameter_names_are_refused(key: str) -> None:
    assert error_of({key: "1"}) == f"Hyperparameter option {key!r} has an invalid name."


@pytest.mark.parametrize("value", ["", "v" * 257])
def test_hyperparameter_values_need_1_to_256_characters(value: str) -> None:
    assert error_of({"hp-index_metric": value}) == (
        "Hyperparameter index_metric needs a value of 1 to 256 characters."
    )


def test_unknown_option_names_the_known_ones() -> None:
    assert error_of({"lable": "Species"}) == (
        "Unknown option 'lable'; known options are name, label, k, predictor_type, "
        "test_fraction, sample_size, scale, encode, missing, min_score, force and "
        "hp-<hyperparameter>."
    )


def test_an_empty_label_is_refused() -> None:
    assert error_of({"label": "  "}) == "Option label is empty; give the name of the label column."


def test_an_unsupported_predictor_type_is_refused() -> None:
    assert error_of({"predictor_type": "clustering"}) == (
        "Option predictor_type='clustering' is not supported; expected one of classifier, "
        "regressor."
    )


@pytest.mark.parametrize("k", [1, 3, K_MAX])
def test_k_within_range(k: int) -> None:
    assert parse_options({"k": str(k)}).k == k


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", f"Option k=0 is out of range; expected 1..{K_MAX} or auto."),
        ("1025", f"Option k=1025 is out of range; expected 1..{K_MAX} or auto."),
        ("-3", f"Option k=-3 is out of range; expected 1..{K_MAX} or auto."),
        ("3.5", f"Option k='3.5' is not a whole number; expected 1..{K_MAX} or auto."),
        ("three", f"Option k='three' is not a whole number; expected 1..{K_MAX} or auto."),
        ("", f"Option k='' is not a whole number; expected 1..{K_MAX} or auto."),
    ],
)
def test_k_out_of_range_or_not_a_number(raw: str, message: str) -> None:
    assert error_of({"k": raw}) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "Option sample_size=0 is out of range; expected 1..2147483647."),
        ("2147483648", "Option sample_size=2147483648 is out of range; expected 1..2147483647."),
        ("many", "Option sample_size='many' is not a whole number; expected 1..2147483647."),
    ],
)
def test_sample_size_out_of_range_or_not_a_number(raw: str, message: str) -> None:
    assert error_of({"sample_size": raw}) == message


@pytest.mark.parametrize("raw", ["0.1", "0.5", "0.99", " 0.3 ", "1e-1"])
def test_test_fraction_strictly_between_0_and_1(raw: str) -> None:
    assert parse_options({"test_fraction": raw}).test_fraction == float(raw)


@pytest.mark.parametrize("raw", ["0", "1", "-0.1", "1.5", "nan", "inf"])
def test_test_fraction_out_of_range(raw: str) -> None:
    assert error_of({"test_fraction": raw}) == (
        f"Option test_fraction={raw} is out of range; expected a value strictly between 0 and 1, "
        "e.g. 0.25."
    )


@pytest.mark.parametrize("raw", ["abc", "", "25%"])
def test_test_fraction_not_a_number(raw: str) -> None:
    assert error_of({"test_fraction": raw}) == (
        f"Option test_fraction={raw!r} is not a number; expected a value between 0 and 1 "
        "(exclusive), e.g. 0.25."
    )


def test_the_record_keeps_only_what_was_set() -> None:
    assert parse_options({}).as_record() == {"test_fraction": "0.25"}
    assert parse_options({"k": "5", "label": "y"}).as_record() == {
        "test_fraction": "0.25",
        "label": "y",
        "k": "5",
    }


def test_the_name_option_is_read_alone_before_the_others() -> None:
    metadata = {"Name": "iris-2", "k": "not a number"}

    assert requested_model_name(metadata) == "iris-2"
    assert requested_model_name({"k": "3"}) is None
    assert parse_options({"name": "iris-2"}).as_record() == {
        "name": "iris-2",
        "test_fraction": "0.25",
    }


@pytest.mark.parametrize("value", ["Iris", "iris_2", "-iris", "a--b", "x" * 33, "", "売上"])
def test_a_chosen_name_must_be_a_model_name(value: str) -> None:
    expected = (
        f"Option name: Invalid model name {value.strip()!r}: use lower-case letters, digits and "
        "single hyphens, at most 32 characters. For example name=iris-2."
    )
    with pytest.raises(InvalidUpload) as error:
        requested_model_name({"name": value})

    assert error.value.message == expected
    assert error_of({"name": value}) == expected


def test_k_auto_is_chosen_by_cross_validation() -> None:
    assert parse_options({"k": " AUTO "}).k == "auto"


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("scale", "Standard", "standard"),
        ("scale", "minmax", "minmax"),
        ("scale", "auto", "auto"),
        ("encode", "onehot", "onehot"),
        ("missing", "drop", "drop"),
        ("missing", " Median ", "median"),
    ],
)
def test_preprocessing_options(key: str, raw: str, expected: str) -> None:
    assert getattr(parse_options({key: raw}), key) == expected
    assert parse_options({key: raw}).transforms


@pytest.mark.parametrize(
    ("key", "raw", "allowed"),
    [
        ("scale", "zscore", "none, standard, minmax, auto"),
        ("encode", "ordinal", "refuse, onehot"),
        ("missing", "mean", "refuse, drop, median"),
    ],
)
def test_unsupported_preprocessing_is_refused(key: str, raw: str, allowed: str) -> None:
    assert error_of({key: raw}) == (
        f"Option {key}={raw!r} is not supported; expected one of {allowed}."
    )


def test_stack_defaults_apply_when_the_upload_does_not_say() -> None:
    defaults = Defaults.parse("auto", "standard", "onehot", "median", "0.8")

    options = parse_options({"scale": "none"}, defaults)

    assert (options.scale, options.encode, options.missing, options.min_score) == (
        "none",
        "onehot",
        "median",
        0.8,
    )
    assert options.k is None and defaults.k == "auto"
    assert parse_options({}) == UploadOptions() and not UploadOptions().transforms


def test_a_bad_stack_default_is_refused_like_an_option() -> None:
    with pytest.raises(InvalidUpload, match="Option scale='z' is not supported"):
        Defaults.parse("1", "z", "refuse", "refuse")


@pytest.mark.parametrize(("raw", "score"), [("0.9", 0.9), ("-0.5", -0.5), ("1", 1.0)])
def test_min_score(raw: str, score: float) -> None:
    assert parse_options({"min_score": raw}).min_score == score


@pytest.mark.parametrize("raw", ["1.5", "nan", "high", "-2"])
def test_min_score_out_of_range(raw: str) -> None:
    assert error_of({"min-score": raw}) == (
        f"Option min_score={raw!r} is not a score; expected a number from -1 to 1 (the test "
        "accuracy of a classifier, the test R² of a regressor), e.g. 0.9."
    )


@pytest.mark.parametrize(("raw", "force"), [("true", True), ("FALSE", False)])
def test_force(raw: str, force: bool) -> None:
    assert parse_options({"force": raw}).force is force


def test_force_must_be_a_boolean() -> None:
    assert error_of({"force": "yes"}) == "Option force='yes' is not true or false."


def test_the_record_keeps_preprocessing_and_the_gate() -> None:
    record = parse_options(
        {"scale": "auto", "k": "auto", "missing": "drop", "min_score": "0.9", "force": "true"}
    ).as_record()

    assert record == {
        "test_fraction": "0.25",
        "k": "auto",
        "min_score": "0.9",
        "scale": "auto",
        "missing": "drop",
        "force": "true",
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("predictor-type", "predictor_type"),
        ("K", "k"),
        ("Test-Fraction", "test_fraction"),
        ("hp-index-metric", "hp-index_metric"),
        ("name", "NAME"),
    ],
)
def test_two_spellings_of_one_option_are_refused_naming_both(first: str, second: str) -> None:
    metadata = {first: "3", second: "4"}
    message = (
        f"Options {first!r} and {second!r} are the same option (case and - or _ do not matter); "
        "give it once."
    )

    assert error_of(metadata) == message


def test_two_spellings_of_the_name_option_are_refused_before_naming_the_model() -> None:
    with pytest.raises(InvalidUpload) as error:
        requested_model_name({"Name": "iris-2", "name": "iris-3", "K": "3", "k": "4"})

    assert error.value.message == (
        "Options 'Name' and 'name' are the same option (case and - or _ do not matter); "
        "give it once."
    )
    assert requested_model_name({"name": "iris-2", "K": "3", "k": "4"}) == "iris-2"


def test_up_to_96_hyperparameter_options_and_not_one_more() -> None:
    allowed = {f"hp-extra_{i}": "1" for i in range(96)}

    assert len(parse_options(allowed).extra_hyperparameters) == 96
    assert error_of({**allowed, "hp-extra_96": "1"}) == (
        "More than 96 hp- options: SageMaker takes at most 100 hyperparameters, and Dropfit sets "
        "4 of them (feature_dim, k, predictor_type, sample_size)."
    )
