"""Experiment configuration: one `ml_collections.ConfigDict` schema, overrides and validation.

An experiment file defines `get_config()`, which starts from `base_config()` and changes
values. Only keys of the schema may be set (the config is locked), except under `model`,
whose keys are the model's constructor arguments and are checked against the model class.
Every mistake becomes a `ConfigError` naming the key, the problem and the fix.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import math
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ml_collections

from jaxmodels.errors import ConfigError
from jaxmodels.files import first_line, read_json_object
from jaxmodels.models import registry
from jaxmodels.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from jaxmodels.parallel import STRATEGIES
from jaxmodels.steps import REMAT_POLICIES
from jaxmodels.tasks import make_task, task_config_defaults


def base_config() -> ml_collections.ConfigDict:
    """Every configurable key with its default: the schema all experiments share."""
    config = ml_collections.ConfigDict()
    config.seed = 0

    # Model: `name` picks a registered model; every other key is a constructor argument.
    config.model = ml_collections.ConfigDict({"name": "mnist1d_cnn"})

    # Task: `name` picks a registered task (jaxmodels.tasks); the other keys are the tasks' own settings.
    config.task = ml_collections.ConfigDict({"name": "classify", **task_config_defaults()})

    config.data = ml_collections.ConfigDict(
        {
            "name": "mnist1d",
            "data_dir": "",  # TFDS data dir; empty = $TFDS_DATA_DIR or ~/tensorflow_datasets
            "train_split": "train",
            "eval_split": "test",
            "batch_size": 100,
            "eval_batch_size": 1000,
            "shuffle": True,  # False: every epoch reads the split in stored order (the MNIST-1D paper's loop)
            "augment": "",  # '' | 'crop_flip' (random 4-px-padded crop + horizontal flip; images, on the host)
            # Controlled corruptions of a classification dataset (records view):
            "permute_inputs": False,  # one fixed permutation of the input features, train and eval alike
            "label_noise": 0.0,  # this fraction of train labels (fixed, seeded) replaced by a uniformly drawn class
            "train_fraction": 1.0,  # train on this fraction of the train records: a fixed subset drawn with `seed`
            "workers": 0,  # Grain worker processes for streamed data (0: background threads only)
            # 'resident': whole dataset on the device, batches gathered inside the jitted step;
            # 'grain': Grain pipeline with background prefetch; 'auto': resident if it fits.
            "loader": "auto",
            "resident_max_mb": 512,
            "host_cache_max_mb": 4096,  # streamed splits up to this size are decoded once into host memory
            # Text and token views (tasks lm, mlm, word2vec, seq2seq):
            # char | word | subword | bpe: trained on the train text, kept in the workdir; 'pretrained': the released
            # tokenizer kept with checkpoint.init_from (an import); or a directory of tokenizer files (pretrained.md)
            "tokenizer": "char",
            "vocab_size": 8000,  # word / subword vocabulary size
            "block_size": 128,  # tokens per window (lm, mlm) or per sequence (seq2seq)
            "window": 5,  # word2vec context window
            "num_negatives": 5,  # word2vec noise words per pair
            "eval_windows": 200,  # cap on validation windows (0 = the whole validation text)
            "prefetch_threads": 2,
            "prefetch_buffer": 8,
            # Your own files (data.name text | arrays | table | huggingface; docs/data.md "Your own data"):
            "files": "",  # comma-separated globs of the train files; a folder stands for the files under it
            "eval_files": "",  # held-out files for the eval split; '' = hold out eval_fraction of the train data
            "eval_fraction": 0.1,  # without eval_files: this fraction held out (text: the tail of the corpus)
            "documents": "file",  # text files: one document per 'file' or per 'line'
            "input_keys": "",  # arrays, tables: the input array or feature columns (comma-separated); '' = the rest
            "label_key": "label",  # arrays, tables: the label array or column (ints, or names mapped to class ids)
            "text_key": "text",  # tables, huggingface: the column holding the text of the text views
            # Image folders (data.name=images) and TFDS builder directories (data.name=tfds_dir), e.g. prepared ones:
            "dir": "",  # the folder: class sub-folders of images (optionally under train/ and test/), or a TFDS dir
            "image_size": (32, 32),  # images: (height, width) every image is resized to cover and centre-cropped to
            "channels": 3,  # images: 1 (greyscale) or 3 (RGB); each image is converted
            "skip_bad_files": False,  # images: leave out files that do not decode (counted) instead of stopping
        }
    )

    config.optimizer = ml_collections.ConfigDict(
        {
            "name": "adam",  # jaxmodels.optim.OPTIMIZERS: adam | adamw | sgd
            "learning_rate": 1e-2,
            "b1": 0.9,
            "b2": 0.999,
            "eps": 1e-8,
            "momentum": 0.9,  # sgd only; 0 = plain SGD
            "nesterov": False,  # sgd only
            "weight_decay": 0.0,  # never applied to biases or norm scales
            "grad_clip_norm": 0.0,  # 0 = no clipping
            "schedule": "constant",  # jaxmodels.optim.SCHEDULES: constant | cosine | warmup_cosine | step
            "warmup_steps": 0,
            "final_lr_fraction": 0.0,  # cosine schedules decay to learning_rate * this
            "step_boundaries": (0.5, 0.75),  # step schedule: fractions of train.num_steps
            "step_factor": 0.1,  # step schedule: multiply the rate by this at each boundary
            # Per-part learning rates: 'encoder:0.1' (a tenth of the rate under params/encoder), 'encoder:0'
            # (frozen); comma-separated 'path:factor', the longest matching prefix wins; '' = one rate for all.
            "lr_multipliers": "",
        }
    )

    config.train = ml_collections.ConfigDict(
        {
            "num_steps": 6000,
            "eval_every": 250,
            "log_every": 50,
            "checkpoint_every": 1000,
            "keep_checkpoints": 3,  # the last K checkpoints are kept (plus the best, see checkpoint.keep_best)
            "progress_bar": True,
            # A step whose loss or gradients are NaN/inf: 'stop' raises an error naming the step and the
            # last good checkpoint; 'skip' leaves the state as it was (counted in train/skipped_steps).
            "on_nonfinite": "stop",
            # Gradient accumulation: each step's batch is split into this many micro-batches whose gradients
            # are averaged (one optimizer update per step; data.batch_size stays the whole batch).
            "accumulate_steps": 1,
            "compute_dtype": "float32",  # 'bfloat16': mixed precision (float32 parameters and optimizer state)
            "remat": "none",  # none | dots (keep matmul outputs) | full: recompute activations in the backward pass
        }
    )

    # Devices and strategy (jaxmodels.parallel, docs/parallel.md). data.batch_size is the global batch.
    config.parallel = ml_collections.ConfigDict(
        {
            "strategy": "dp",  # jaxmodels.parallel.STRATEGIES: pmap | dp | fsdp | tp
            "num_devices": 0,  # 0 = every device JAX sees; n = the first n (single process)
            "cpu_devices": 1,  # CPU-only hosts: JAX devices to split the cores into (docs/parallel.md)
            "mesh": ml_collections.ConfigDict({"data": -1, "model": 1}),  # -1 = the remaining devices
            # Multi-host (jax.distributed): blanks are auto-detected on SLURM, Open MPI, Kubernetes, Cloud TPU.
            "distributed": False,  # True: start jax.distributed even without an explicit coordinator
            "coordinator_address": "",  # host:port of process 0; also read from $JAX_COORDINATOR_ADDRESS
            "num_processes": 0,  # 0 = auto-detect
            "process_id": -1,  # -1 = auto-detect
            "initialization_timeout": 300,  # seconds to wait for every process to connect
            "heartbeat_timeout": 100,  # seconds after which a silent (crashed) peer ends the run
        }
    )

    # Checkpoints beyond train.checkpoint_every / train.keep_checkpoints; docs/checkpoints.md explains them.
    config.checkpoint = ml_collections.ConfigDict(
        {
            "keep_best": 0,  # also keep the K best checkpoints by `best_metric` (0: off); saves at every eval
            "best_metric": "test/accuracy",  # any key of metrics.jsonl at an eval step, e.g. 'test/loss'
            "best_mode": "max",  # max | min
            "init_from": "",  # a new run starts from these params: a `jaxmodels export` dir or a workdir
            "init_subtree": "",  # load only this params subtree (e.g. 'encoder'); '' = every matching path
            # Resuming after an optimizer change (e.g. grad_clip_norm switched on): keep the checkpoint's params and
            # model state and start a fresh optimizer state (the learning-rate schedule continues from the step).
            "reset_optimizer": False,
        }
    )

    # Ending a run whose eval metric stopped improving (jaxmodels/early_stopping.py); off while `metric` is ''.
    config.early_stopping = ml_collections.ConfigDict(
        {
            "metric": "",  # an eval metric, e.g. 'test/accuracy'
            "mode": "max",  # max | min: the direction of improvement
            "patience": 5,  # evaluations without improvement before the run stops
            "min_delta": 0.0,  # an improvement must exceed this
        }
    )
    return config


# The valid values of keys that name a choice; the named things live in the registries that implement them.
CHOICES = {
    "data.loader": ("auto", "resident", "grain"),
    "data.documents": ("file", "line"),
    "optimizer.name": tuple(OPTIMIZERS),
    "optimizer.schedule": tuple(SCHEDULES),
    "train.on_nonfinite": ("stop", "skip"),
    "checkpoint.best_mode": ("max", "min"),
    "early_stopping.mode": ("max", "min"),
    "train.compute_dtype": ("float32", "bfloat16"),
    "train.remat": tuple(REMAT_POLICIES),
    "parallel.strategy": tuple(STRATEGIES),
}
POSITIVE_INTS = (
    "data.batch_size",
    "data.eval_batch_size",
    "data.block_size",
    "data.window",
    "data.num_negatives",
    "data.vocab_size",
    "train.num_steps",
    "train.eval_every",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.accumulate_steps",
    "early_stopping.patience",
    "parallel.initialization_timeout",
    "parallel.heartbeat_timeout",
    "parallel.cpu_devices",
)
NON_NEGATIVE = (
    "optimizer.learning_rate",
    "optimizer.weight_decay",
    "optimizer.grad_clip_norm",
    "optimizer.warmup_steps",
    "optimizer.momentum",
    "data.prefetch_threads",
    "data.workers",
    "checkpoint.keep_best",
    "early_stopping.min_delta",
)
# Adam's decay rates of the moment estimates: 1 would never forget a gradient, above 1 the estimates diverge.
DECAY_RATES = ("optimizer.b1", "optimizer.b2")


def load_config_file(path: str | Path) -> ml_collections.ConfigDict:
    """Runs an experiment file's `get_config()` and returns its locked config, checked against the schema.

    The file is Python, run as code. Its config is rebuilt key by key on `base_config()`, so a key the schema
    lacks (a typo such as `config.optimizer.learnin_rate = 1`) is refused as a `--config.` override is, and
    `model` keys must be arguments of the file's model. A file that does not run, has no `get_config()` or
    returns something else than a ConfigDict is a ConfigError naming the file and line. A `.json` file is read
    as data instead: a workdir's `config.json`, to re-run a past run's exact settings elsewhere
    (`jaxmodels train --config runs/x/config.json --workdir runs/y`); other suffixes are refused.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"config file {str(path)!r} is a directory; pass the experiment .py file, e.g. experiments/mnist1d_cnn.py"
        )
    if not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} does not exist; pass an experiment file such as experiments/mnist1d_cnn.py"
        )
    if path.suffix == ".json":  # a workdir's config.json: a past run's exact settings
        return load_saved_config(path)
    if path.suffix != ".py":
        raise ConfigError(
            f"config file {str(path)!r} is neither an experiment file (.py, defining get_config()) nor a workdir's "
            "config.json; pass one of those"
        )
    config = _run_get_config(path)
    try:
        rebuilt = config_from_dict(config.to_dict())
        registry.check_arguments(rebuilt.model.name, model_arguments(rebuilt))
    except ConfigError as error:
        raise ConfigError(f"config file {str(path)!r}: {error}") from None
    return rebuilt


def _run_get_config(path: Path) -> ml_collections.ConfigDict:
    """Executes the experiment file and calls its `get_config()`; any failure is a ConfigError with a line."""
    spec = importlib.util.spec_from_file_location(f"jaxmodels_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    _run_file_code(path, lambda: spec.loader.exec_module(module), None)
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ConfigError(
            f"config file {str(path)!r} defines no get_config(); add one that returns base_config() with changes"
        )
    config = _run_file_code(path, get_config, get_config)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"config file {str(path)!r}, line {_definition_line(get_config)}: get_config() returned a "
            f"{type(config).__name__}, not an ml_collections.ConfigDict; return base_config() with changes"
        )
    return config


def _run_file_code(path: Path, run: Callable[[], Any], get_config: Any) -> Any:
    """`run()`, the experiment file's code; what it raises becomes a ConfigError naming the file and line."""
    try:
        return run()
    except SyntaxError as error:
        raise ConfigError(
            f"config file {str(path)!r}, line {error.lineno}: {error.msg}; fix the Python syntax there"
        ) from None
    except Exception as error:  # the file is code: whatever it raises is its mistake, reported where it happened
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = frames[-1].lineno if frames else _definition_line(get_config)
        raise ConfigError(
            f"config file {str(path)!r}, line {line}: {type(error).__name__}: {first_line(error)}"
        ) from None


def _definition_line(function: Any) -> int:
    """The line where `function` is defined (1 if unknown, e.g. for a module-level failure)."""
    code = getattr(function, "__code__", None)
    return code.co_firstlineno if code else 1


def lock(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Locks the schema (no new keys) but leaves `model` open for constructor arguments."""
    config.lock()
    config.model.unlock()
    return config


def config_from_dict(values: dict[str, Any]) -> ml_collections.ConfigDict:
    """Rebuilds a config saved as JSON (e.g. `<workdir>/config.json`) on top of the schema."""
    config = lock(base_config())
    for key, value in _flatten(values):
        set_value(config, key, value)
    return config


def load_saved_config(path: Path) -> ml_collections.ConfigDict:
    """A config saved as JSON (`<workdir>/config.json`), read as data and checked against the schema; a file that
    is not a JSON object of config keys is a ConfigError naming it."""
    values = read_json_object(path, ConfigError)
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'section.key: old -> new' for every key whose value differs between two configs as JSON dicts."""
    before, after = dict(_flatten(saved)), dict(_flatten(current))
    missing = object()
    return [
        f"{key}: {before.get(key, '(absent)')!r} -> {after.get(key, '(absent)')!r}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, missing) != after.get(key, missing)
    ]


def set_value(config: ml_collections.ConfigDict, dotted_key: str, value: Any) -> None:
    """Sets `config.<dotted_key> = value`, with the key and type checked against the schema."""
    *parents, leaf = dotted_key.split(".")
    node = config
    for depth, part in enumerate(parents):
        node = _child(node, part, ".".join(parents[:depth]))
        if not isinstance(node, ml_collections.ConfigDict):
            raise ConfigError(f"config key {'.'.join(parents[: depth + 1])!r} is a value, not a section")
    section = ".".join(parents)
    if leaf not in node and node.is_locked:
        raise ConfigError(f"unknown config key {dotted_key!r}.{_suggest(leaf, node, section)}")
    current = node.get(leaf)
    if isinstance(current, ml_collections.ConfigDict):
        example = next(iter(current.keys()), "key")
        raise ConfigError(
            f"config key {dotted_key!r} is a section, not a value; set its keys, "
            f"e.g. --config.{dotted_key}.{example}=..."
        )
    if value is None and current is not None and node.is_locked:  # ConfigDict would accept None for any type
        raise ConfigError(
            f"config key {dotted_key!r} expects a value of type {type(current).__name__}, got None; give a value"
        )
    if isinstance(value, list) and leaf in node and isinstance(node[leaf], tuple):
        value = tuple(value)
    try:
        node[leaf] = value
    except TypeError:
        expected = type(node[leaf]).__name__
        if is_number(node[leaf]) and _is_non_finite_text(value):
            raise ConfigError(f"config key {dotted_key!r} must be a finite number, got {value!r}") from None
        raise ConfigError(
            f"config key {dotted_key!r} expects a value of type {expected}, got {value!r} ({type(value).__name__})"
        ) from None


def _is_non_finite_text(value: Any) -> bool:
    """Whether `value` is text that reads as a float which is not finite ('nan', 'inf', '-Infinity', ...)."""
    try:
        return isinstance(value, str) and not math.isfinite(float(value))
    except ValueError:
        return False


def _child(node: ml_collections.ConfigDict, part: str, section: str) -> Any:
    if part not in node:
        dotted = f"{section}.{part}" if section else part
        raise ConfigError(f"unknown config section {dotted!r}.{_suggest(part, node, section)}")
    return node[part]


def _suggest(key: str, node: ml_collections.ConfigDict, section: str) -> str:
    prefix = f"{section}." if section else ""
    names = sorted(node.keys())
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    if close:
        return f" Did you mean {' or '.join(repr(prefix + c) for c in close)}?"
    return f" Valid keys here: {', '.join(prefix + n for n in names)}."


def parse_override(text: str) -> tuple[str, Any]:
    """Parses one command-line override `config.a.b=value` (or `a.b=value`) into (key, value).

    Values are Python literals (`3`, `1e-3`, `True`, `(1, 2)`, `'adam'`); anything that is not
    a literal is taken as a string, so `--config.optimizer.name=sgd` needs no quotes.
    """
    key, sep, raw = text.partition("=")
    key = key.removeprefix("--").removeprefix("config.")
    if not sep or not key:
        raise ConfigError(f"bad override {text!r}: write --config.section.key=value")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):  # e.g. '{[]: 1}' is a TypeError
        value = raw
    return key, value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Applies `--config.key=value` overrides in order, then validates the result."""
    for text in overrides:
        set_value(config, *parse_override(text))
    validate(config)
    return config


def _get(config: ml_collections.ConfigDict, dotted_key: str) -> Any:
    node = config
    for part in dotted_key.split("."):
        node = node[part]
    return node


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks names and ranges that types alone cannot; raises ConfigError on the first problem."""
    for key, value in _flatten(config.to_dict()):  # NaN would pass the range checks below
        if any(isinstance(item, float) and not math.isfinite(item) for item in _items(value)):
            raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
    make_task(config)  # an unknown task name, or a task setting out of range, fails here
    for key, choices in CHOICES.items():
        value = _get(config, key)
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"config key {key!r} is {value!r}; choose one of {', '.join(choices)}.{hint}")
    for key in POSITIVE_INTS:
        value = _get(config, key)
        if not is_int(value) or value <= 0:
            raise ConfigError(f"config key {key!r} must be a positive integer, got {value!r}")
    for key in NON_NEGATIVE:
        value = _get(config, key)
        if not is_number(value) or not value >= 0:  # `not >=` also catches NaN
            raise ConfigError(f"config key {key!r} must be >= 0, got {value!r}")
    for key in DECAY_RATES:
        value = _get(config, key)
        if not is_number(value) or not 0 <= value < 1:
            raise ConfigError(f"config key {key!r} must be in [0, 1), got {value!r} (the defaults: b1=0.9, b2=0.999)")
    if not is_number(config.data.label_noise) or not 0 <= config.data.label_noise <= 1:
        raise ConfigError(
            f"config key 'data.label_noise' must be a fraction in [0, 1], got {config.data.label_noise!r}"
        )
    if not is_number(config.data.train_fraction) or not 0 < config.data.train_fraction <= 1:
        raise ConfigError(
            f"config key 'data.train_fraction' must be a fraction in (0, 1], got {config.data.train_fraction!r} "
            "(1.0 trains on the whole train split; 0.05 on a fixed 5 % of its records)"
        )
    if not is_number(config.data.eval_fraction) or not 0 < config.data.eval_fraction < 1:
        raise ConfigError(
            f"config key 'data.eval_fraction' must be a fraction in (0, 1), got {config.data.eval_fraction!r} "
            "(0.1 holds out a tenth of the data for evaluation)"
        )
    if config.data.channels not in (1, 3):
        raise ConfigError(f"config key 'data.channels' is {config.data.channels!r}; choose 1 (greyscale) or 3 (RGB)")
    size = config.data.image_size
    if not (isinstance(size, tuple) and len(size) == 2 and all(is_int(side) and side > 0 for side in size)):
        raise ConfigError(
            f"config key 'data.image_size' must be (height, width) in pixels, got {size!r}; e.g. "
            "--config.data.image_size='(32, 32)'"
        )
    if config.checkpoint.keep_best and not config.checkpoint.best_metric:
        raise ConfigError(
            "config key 'checkpoint.keep_best' needs 'checkpoint.best_metric', a metric name such as 'test/accuracy'"
        )
    if config.data.batch_size % config.train.accumulate_steps:
        raise ConfigError(
            f"data.batch_size={config.data.batch_size} is not divisible by train.accumulate_steps="
            f"{config.train.accumulate_steps}; set data.batch_size to a multiple of it"
        )
    if "name" not in config.model or not isinstance(config.model.name, str):
        raise ConfigError("config key 'model.name' must name a model, e.g. --config.model.name=mnist1d_cnn")
    make_optimizer(config.optimizer, config.train.num_steps)  # schedule settings that do not fit the run fail here


def _items(value: Any) -> tuple[Any, ...]:
    """A config value's items: those of a tuple or list (e.g. optimizer.step_boundaries), else the value alone."""
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def is_int(value: Any) -> bool:
    """An int as a config or JSON value holds one (a bool is not one, though Python says it is)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float as a config or JSON value holds one (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_json(config: ml_collections.ConfigDict) -> str:
    """The resolved config as indented JSON (saved to `<workdir>/config.json`)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def model_arguments(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The model section minus `name`: keyword arguments for the model constructor."""
    return {key: value for key, value in config.model.items() if key != "name"}
