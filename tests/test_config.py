"""Config schema, command-line overrides and validation errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxmodels import config as config_lib
from jaxmodels.errors import ConfigError
from tests.conftest import EXPERIMENTS


@pytest.fixture
def config():
    return config_lib.lock(config_lib.base_config())


def test_override_parses_python_literals_and_bare_strings(config):
    config_lib.apply_overrides(
        config,
        [
            "--config.optimizer.learning_rate=3e-3",
            "--config.train.num_steps=10",
            "--config.optimizer.name=sgd",
            "--config.optimizer.nesterov=True",
            "--config.optimizer.step_boundaries=(0.3,)",
        ],
    )
    assert config.optimizer.learning_rate == 3e-3
    assert config.train.num_steps == 10
    assert config.optimizer.name == "sgd"
    assert config.optimizer.nesterov is True
    assert config.optimizer.step_boundaries == (0.3,)


def test_int_is_accepted_for_a_float_key(config):
    config_lib.set_value(config, "optimizer.learning_rate", 1)
    assert config.optimizer.learning_rate == 1.0


def test_model_section_accepts_constructor_arguments(config):
    config_lib.apply_overrides(config, ["--config.model.channels=8"])
    assert config_lib.model_arguments(config) == {"channels": 8}


def test_unknown_key_suggests_the_closest(config):
    with pytest.raises(ConfigError, match=r"unknown config key 'optimizer.learnin_rate'.*'optimizer.learning_rate'"):
        config_lib.apply_overrides(config, ["--config.optimizer.learnin_rate=0.1"])


def test_unknown_section_suggests_the_closest(config):
    with pytest.raises(ConfigError, match=r"unknown config section 'trian'.*'train'"):
        config_lib.apply_overrides(config, ["--config.trian.num_steps=5"])


def test_wrong_type_names_key_and_expected_type(config):
    with pytest.raises(ConfigError, match=r"'train.num_steps' expects a value of type int, got 'ten'"):
        config_lib.apply_overrides(config, ["--config.train.num_steps=ten"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--config.optimizer.name=adamm", r"'optimizer.name' is 'adamm'.*Did you mean 'adam'"),
        ("--config.optimizer.schedule=cosin", r"Did you mean 'cosine'"),
        ("--config.data.loader=disk", r"choose one of auto, resident, grain"),
        ("--config.train.num_steps=0", r"'train.num_steps' must be a positive integer"),
        ("--config.data.batch_size=-4", r"'data.batch_size' must be a positive integer"),
        ("--config.optimizer.learning_rate=-1.0", r"'optimizer.learning_rate' must be >= 0"),
        ("--config.task.label_smoothing=1.0", r"label_smoothing' must be in \[0, 1\)"),
    ],
)
def test_invalid_values_are_rejected(config, override, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.apply_overrides(config, [override])


def test_malformed_override_is_rejected(config):
    with pytest.raises(ConfigError, match=r"write --config\.section\.key=value"):
        config_lib.apply_overrides(config, ["--config.train.num_steps"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config_lib.load_config_file(tmp_path / "nope.py")


def test_config_file_without_get_config(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"defines no get_config\(\)"):
        config_lib.load_config_file(path)


def test_json_round_trip_restores_types(config):
    config_lib.apply_overrides(config, ["--config.optimizer.step_boundaries=(0.25, 0.5)", "--config.model.channels=7"])
    restored = config_lib.config_from_dict(json.loads(config_lib.to_json(config)))
    assert restored.to_dict() == config.to_dict()
    assert restored.optimizer.step_boundaries == (0.25, 0.5)


def test_every_experiment_file_loads_and_validates(experiment_exports):
    paths = sorted(EXPERIMENTS.glob("*.py"))
    assert len(paths) >= 4
    for path in paths:
        config = config_lib.load_config_file(path)
        config_lib.validate(config)
        module_doc = path.read_text().split('"""')[1]
        assert "jaxmodels train --config" in module_doc, f"{path} docstring must give its command"


# ------------------------------------------------------------------------------------ property: bad overrides

_SCHEMA_KEYS = sorted(
    key for key, _ in config_lib._flatten(config_lib.base_config().to_dict())
)  # every real key, so the fuzzer also hits type and range checks, not only the unknown-key path
_VALUES = st.one_of(
    st.sampled_from(
        ["", "None", "True", "-1", "0", "1e999", "-1e999", "nan", "()", "[]", "{}", "{[]: 1}", "((1,", "'x'"]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
    st.lists(st.integers(-3, 3), max_size=3).map(lambda values: str(tuple(values))),
)
_KEYS = st.one_of(
    st.sampled_from(_SCHEMA_KEYS),
    st.sampled_from(_SCHEMA_KEYS).map(lambda key: key + "x"),  # a typo of a real key
    st.sampled_from(["", ".", "model", "train", "checkpoint", "model.name.x", "seed.x", "a.b.c"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", max_size=20),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES, st.booleans()), min_size=1, max_size=4))
def test_any_bad_override_is_a_config_error_never_a_crash(overrides):
    texts = [
        f"--config.{key}={value}" if with_sign else f"--config.{key}{value}" for key, value, with_sign in overrides
    ]
    config = config_lib.lock(config_lib.base_config())
    try:
        config_lib.apply_overrides(config, texts)
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message, message  # one clear line


def test_schedule_settings_that_do_not_fit_the_run_fail_at_validation_before_any_data_is_read():
    config = config_lib.lock(config_lib.base_config())
    with pytest.raises(ConfigError, match=r"optimizer.warmup_steps=100 must be below train.num_steps=100"):
        config_lib.apply_overrides(
            config, ["optimizer.schedule=warmup_cosine", "optimizer.warmup_steps=100", "train.num_steps=100"]
        )
