"""A sweep's search space: a JSON or YAML file mapping config keys to the values a trial may take.

    {"optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": true},
     "model.hidden_size": {"type": "int", "low": 16, "high": 128, "step": 16},
     "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]}}

Every entry is checked before any trial runs: its key must be a config key of the experiment, its bounds or
choices must be values that key accepts (each one is set on the config and validated, as a `--config.` override
would be), and the entry must describe a proper range. A mistake is one ConfigError naming the file, the key,
the problem and the fix. `suggest` draws a trial's values through Optuna; `trial_config` applies them.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import ml_collections

from jaxmodels import config as config_lib
from jaxmodels.errors import ConfigError
from jaxmodels.models import registry

TYPES = ("float", "int", "categorical")
FIELDS = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "log", "step"), "categorical": ("choices",)}
EXAMPLE = '{"optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": true}}'


def load_space(path: str | Path, config: ml_collections.ConfigDict) -> dict[str, dict[str, Any]]:
    """The space file at `path` (.json, or .yaml/.yml), checked against `config`; normalised: every field present
    (`log` False, `step` None for numbers), so two spaces compare equal exactly when they sample the same way."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"space file {str(path)!r} does not exist; write one like {EXAMPLE} (docs/sweeps.md)")
    return check_space(_read(path), config, f"space file {str(path)!r}")


def _read(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"space file {str(path)!r} is not valid JSON ({error}); fix its syntax") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml  # comes with optuna

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            problem = " ".join(str(error).split())
            raise ConfigError(f"space file {str(path)!r} is not valid YAML ({problem}); fix its syntax") from None
    raise ConfigError(f"space file {str(path)!r}: name a .json, .yaml or .yml file")


def check_space(space: Any, config: ml_collections.ConfigDict, where: str = "search space") -> dict[str, dict]:
    """`space` (a dict as read from a space file) checked against `config` and normalised (see `load_space`)."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where} must map config keys to ranges, e.g. {EXAMPLE}; got {_short(space)}")
    return {key: _check_entry(key, entry, config, f"{where}, key {key!r}") for key, entry in space.items()}


def _check_entry(key: Any, entry: Any, config: ml_collections.ConfigDict, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping like {{'type': 'float', 'low': ..., 'high': ...}}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}: 'type' is {kind!r}; choose one of {', '.join(TYPES)}")
    unknown = sorted(set(entry) - {"type", *FIELDS[kind]})
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r} for type {kind}; its fields: {', '.join(FIELDS[kind])}"
        )
    normalised = _check_choices(entry, where) if kind == "categorical" else _check_range(kind, entry, where)
    values = normalised["choices"] if kind == "categorical" else (normalised["low"], normalised["high"])
    for value in values:
        _check_value(config, key, value, where)
    current = _current_value(config, key)
    if kind == "float" and config_lib.is_int(current):
        raise ConfigError(f'{where}: config key {key!r} holds an integer; use "type": "int"')
    return normalised


def _check_range(kind: str, entry: dict[str, Any], where: str) -> dict[str, Any]:
    number = config_lib.is_int if kind == "int" else _is_real
    low, high, log, step = entry.get("low"), entry.get("high"), entry.get("log", False), entry.get("step")
    for name, value in (("low", low), ("high", high)):
        if not number(value):
            raise ConfigError(
                f"{where}: {name!r} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}"
            )
    if not low < high:
        raise ConfigError(f"{where}: 'low' ({low!r}) must be below 'high' ({high!r}); swap or widen them")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: 'log' must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs 'low' > 0, got {low!r}; raise 'low' or set 'log' to false")
    if step is not None:
        if not number(step) or not step > 0:
            raise ConfigError(f"{where}: 'step' must be a positive {'integer' if kind == 'int' else 'number'}")
        if log:
            raise ConfigError(f"{where}: 'step' and 'log' cannot be combined; drop one of them")
    return {"type": kind, "low": low, "high": high, "log": log, "step": step}


def _check_choices(entry: dict[str, Any], where: str) -> dict[str, Any]:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f'{where}: \'choices\' must be a non-empty list, e.g. ["adam", "sgd"]; got {choices!r}')
    for choice in choices:
        if not (choice is None or isinstance(choice, bool | int | float | str)):
            raise ConfigError(f"{where}: choice {choice!r} is not a number, string, boolean or null (Optuna's choices)")
    if len({json.dumps(choice) for choice in choices}) < len(choices):
        raise ConfigError(f"{where}: 'choices' lists a value twice; name each once")
    return {"type": "categorical", "choices": choices}


def _check_value(config: ml_collections.ConfigDict, key: Any, value: Any, where: str) -> None:
    """`value` set at `key` on a copy of `config` must give a valid config (the schema, ranges and model)."""
    if not isinstance(key, str):
        raise ConfigError(f"{where}: keys are dotted config keys such as 'optimizer.learning_rate'")
    try:
        trial_config({key: value}, config)
    except ConfigError as error:
        raise ConfigError(f"{where} (value {value!r}): {error}") from None


def _current_value(config: ml_collections.ConfigDict, key: str) -> Any:
    """The value at dotted `key` in `config`; None for a model argument the config leaves at its default."""
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    return node


def trial_config(params: dict[str, Any], config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with each dotted key of `params` set to its value, validated like `--config.` overrides."""
    trial = copy.deepcopy(config)
    for key, value in params.items():
        config_lib.set_value(trial, key, value)
    config_lib.validate(trial)
    registry.check_arguments(trial.model.name, config_lib.model_arguments(trial))
    return trial


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The values of an `optuna.Trial` for every key of `space` (a retried trial gets its original's values)."""
    params = {}
    for key, entry in space.items():
        if entry["type"] == "categorical":
            params[key] = trial.suggest_categorical(key, entry["choices"])
        elif entry["type"] == "int":
            params[key] = trial.suggest_int(key, entry["low"], entry["high"], step=entry["step"] or 1, log=entry["log"])
        else:
            params[key] = trial.suggest_float(key, entry["low"], entry["high"], step=entry["step"], log=entry["log"])
    return params


def _is_real(value: Any) -> bool:
    return config_lib.is_number(value) and math.isfinite(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
