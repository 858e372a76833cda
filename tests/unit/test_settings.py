"""Settings are parsed once from the environment the template sets."""

from __future__ import annotations

import pytest
from dropfit.settings import DeploySettings, FormatSettings, PredictSettings, SettingsError

DEPLOY_ENV = {
    "TABLE_NAME": "dropfit-table",
    "NAME_PREFIX": "dropfit",
    "KNN_IMAGE_URI": "382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "SERVERLESS_MEMORY_MB": "2048",
    "SERVERLESS_MAX_CONCURRENCY": "5",
    "FAILURE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:failures",
    "REPLACE_MARGIN": "0.05",
    "ASYNC_ATTEMPTS": "3",
    "KEEP_RUNS": "3",
}


def test_from_env_reads_strings_and_parses_ints() -> None:
    settings = DeploySettings.from_env(DEPLOY_ENV)

    assert settings.table_name == "dropfit-table"
    assert settings.serverless_memory_mb == 2048
    assert settings.serverless_max_concurrency == 5
    assert isinstance(settings.serverless_memory_mb, int)


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "from-process")
    monkeypatch.setenv("NAME_PREFIX", "dropfit")
    monkeypatch.setenv("BUCKET_NAME", "dropfit-data")
    monkeypatch.setenv("DATASETS_PREFIX", "datasets/")
    monkeypatch.setenv("ALLOW_NEIGHBORS", "false")

    assert PredictSettings.from_env().table_name == "from-process"


@pytest.mark.parametrize("missing", sorted(DEPLOY_ENV))
def test_a_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in DEPLOY_ENV.items() if k != missing}

    with pytest.raises(SettingsError) as error:
        DeploySettings.from_env(env)

    assert str(error.value) == f"environment variable {missing} is not set"


def test_an_empty_variable_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="environment variable TABLE_NAME is not set"):
        DeploySettings.from_env({**DEPLOY_ENV, "TABLE_NAME": ""})


@pytest.mark.parametrize("raw", ["2GB", "1.5", "many"])
def test_a_non_integer_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as error:
        DeploySettings.from_env({**DEPLOY_ENV, "SERVERLESS_MEMORY_MB": raw})

    assert str(error.value) == f"SERVERLESS_MEMORY_MB must be an integer, got {raw!r}"


PREDICT_ENV = {
    "TABLE_NAME": "t",
    "NAME_PREFIX": "dropfit",
    "BUCKET_NAME": "b",
    "DATASETS_PREFIX": "datasets/",
}


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("false", False)])
def test_a_flag_is_true_or_false(raw: str, value: bool) -> None:
    assert (
        PredictSettings.from_env({**PREDICT_ENV, "ALLOW_NEIGHBORS": raw}).allow_neighbors is value
    )


@pytest.mark.parametrize("raw", ["yes", "1", "True"])
def test_a_flag_of_another_spelling_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as error:
        PredictSettings.from_env({**PREDICT_ENV, "ALLOW_NEIGHBORS": raw})

    assert str(error.value) == f"ALLOW_NEIGHBORS must be true or false, got {raw!r}"


def test_env_names_list_each_class_variables() -> None:
    assert PredictSettings.env_names() == [
        "TABLE_NAME",
        "NAME_PREFIX",
        "BUCKET_NAME",
        "DATASETS_PREFIX",
        "ALLOW_NEIGHBORS",
    ]
    assert set(DeploySettings.env_names()) == set(DEPLOY_ENV)
    assert {
        "TRAINING_INSTANCE_COUNT",
        "MAX_TRAINING_SECONDS",
        "DEFAULT_K",
        "INCOMING_PREFIX",
    } <= set(FormatSettings.env_names())


def test_the_format_function_reads_the_stack_option_defaults() -> None:
    env = {name: "x" for name in FormatSettings.env_names()}
    env |= {"TRAINING_INSTANCE_COUNT": "1", "MAX_TRAINING_SECONDS": "60", "ASYNC_ATTEMPTS": "3"}
    env |= {"PROCESSING_THRESHOLD_MB": "10", "PROCESSING_INSTANCE_COUNT": "1"}
    env |= {"DEFAULT_K": "auto", "DEFAULT_SCALE": "standard", "DEFAULT_ENCODE": "onehot"}
    env |= {"DEFAULT_MISSING": "drop", "DEFAULT_MIN_SCORE": "0.8"}

    defaults = FormatSettings.from_env(env).defaults()

    assert (defaults.k, defaults.scale, defaults.encode, defaults.missing) == (
        "auto",
        "standard",
        "onehot",
        "drop",
    )
    assert defaults.min_score == 0.8
    with pytest.raises(SettingsError, match="a stack default is invalid: Option scale="):
        FormatSettings.from_env({**env, "DEFAULT_SCALE": "zscore"}).defaults()


@pytest.mark.parametrize(("raw", "margin"), [("none", None), ("0.05", 0.05), ("0", 0.0)])
def test_the_replace_margin(raw: str, margin: float | None) -> None:
    assert DeploySettings.from_env({**DEPLOY_ENV, "REPLACE_MARGIN": raw}).margin() == margin


@pytest.mark.parametrize("raw", ["-0.1", "lots", "nan"])
def test_a_bad_replace_margin_is_a_settings_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="REPLACE_MARGIN must be none or a score difference"):
        DeploySettings.from_env({**DEPLOY_ENV, "REPLACE_MARGIN": raw}).margin()
