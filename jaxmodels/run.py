"""Runs in workdirs: the Python API (`import jaxmodels as jm`) and what every CLI command calls.

    config = jm.load_config("experiments/mnist1d_cnn.py", ["train.num_steps=500"])
    run = jm.train(config, "runs/cnn")      # `jaxmodels train`: resumes, logs, checkpoints
    run.history, run.final                  # metrics.jsonl rows; the final evaluation
    run = jm.load("runs/cnn")               # a checkpoint of a workdir (latest, step=N or best=True)
    logits = run.apply(inputs)              # inference forward pass
    jm.evaluate(run)                        # `jaxmodels eval`
    jm.sample(run, "ROMEO:", 200)           # `jaxmodels sample` (language models)
    jm.fill_mask(run, "a [MASK] word")      # `jaxmodels fill-mask` (masked language models)
    model = jm.load_export("exports/gpt2")  # an export (`jaxmodels import` / `export`): sample and fill_mask take it
    jm.compile(config)                      # `jaxmodels compile`: FLOPs and memory per device

A `Run` is a workdir's experiment (jaxmodels.experiment: model, task, data, strategy) with the train state of
one of its checkpoints. Parameter export lives in jaxmodels.params_io.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmodels import config as config_lib
from jaxmodels import loop
from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.compile_report import compile_report
from jaxmodels.data.tokenizers import Tokenizer
from jaxmodels.early_stopping import Stopper
from jaxmodels.errors import CheckpointError, ConfigError, JaxmodelsError
from jaxmodels.experiment import Experiment, build_experiment
from jaxmodels.exported import ExportedModel, jitted_apply
from jaxmodels.files import first_line, make_writable_dir, removed_if_failed, workdir_path
from jaxmodels.masked_lm import check_tokenizer_fits
from jaxmodels.metric_writers import read_history
from jaxmodels.models.sampling import generate
from jaxmodels.params_io import EXPORT_FILE
from jaxmodels.preemption import PreemptionGuard
from jaxmodels.steps import TrainState
from jaxmodels.workdir_lock import workdir_locked


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """An experiment file's config with overrides applied, as the CLI reads it.

    Overrides are 'section.key=value' (or the CLI's '--config.section.key=value'); the result is validated.
    """
    return config_lib.apply_overrides(config_lib.load_config_file(path), list(overrides))


@dataclasses.dataclass
class Run:
    """One checkpoint of a workdir's run, with the experiment that trained it."""

    workdir: Path
    experiment: Experiment
    state: TrainState  # one logical copy (canonical), whatever the strategy
    step: int
    final: dict[str, float]  # the evaluation at `step` ('test/accuracy', ...), as metrics.jsonl has it

    @property
    def config(self) -> ml_collections.ConfigDict:
        """The resolved config of the run."""
        return self.experiment.config

    @property
    def model(self) -> nn.Module:
        """The Flax module (apply it with `variables`)."""
        return self.experiment.model

    @property
    def variables(self) -> dict[str, Any]:
        """{'params': ..., plus model state such as 'batch_stats'}: what `model.apply` takes."""
        return {"params": self.state.params, **self.state.model_state}

    @property
    def eval_examples(self) -> Mapping[str, Any]:
        """The eval split as the model sees it: {'inputs': ..., 'label': ...} (this process's share). Arrays, or,
        for a split over `data.resident_max_mb`, columns indexed as arrays are (`["inputs"][:8]`) that read and
        preprocess only the records asked for."""
        return self.experiment.view.eval_examples

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The text tokenizer the run trained with (kept in its workdir); None for non-text data."""
        return self.experiment.view.tokenizer

    @property
    def history(self) -> list[dict[str, float]]:
        """The rows of the workdir's metrics.jsonl, in step order."""
        return read_history(self.workdir)

    def apply(self, *inputs: Any, **kwargs: Any) -> Any:
        """The model's inference forward pass (train=False: no dropout, frozen statistics) on a batch of inputs.

        Positional inputs and keywords as the model's `__call__` takes them (for a classifier, the images or
        signals; it returns logits). Compiled once per input shape. Inputs the model cannot take raise a
        ValueError that gives the shapes it takes, those of the eval split's inputs.
        """
        try:
            return jitted_apply(self.model)(self.variables, *inputs, **kwargs)
        except Exception as error:  # whatever a layer deep inside raises on inputs of the wrong shape
            got = tuple(np.shape(inputs[0])) if inputs else None
            accepted = self._accepted_input_shapes() if got is not None and "inputs" in self.eval_examples else []
            if not accepted or got[1:] in accepted:  # not a matter of shape, or no eval inputs to compare with
                raise
            shapes = " or ".join(str(("batch", *shape)).replace("'", "") for shape in accepted)
            raise ValueError(
                f"apply expects inputs of shape {shapes}, as the eval split's; got {got} "
                f"({type(error).__name__}: {first_line(error)})"
            ) from None

    def _accepted_input_shapes(self) -> list[tuple[int, ...]]:
        """The per-example shapes of inputs `apply` takes: the eval split's, and with a trailing channel axis of 1
        if the model takes that too (a signal of 40 values as (40,) or (40, 1))."""
        example = np.asarray(self.eval_examples["inputs"][:1])
        accepted = [example.shape[1:]]
        with_channel = jax.ShapeDtypeStruct((1, *example.shape[1:], 1), example.dtype)
        try:
            jax.eval_shape(jitted_apply(self.model), self.variables, with_channel)
            accepted.append(with_channel.shape[1:])
        except Exception:  # the model takes no channel axis
            pass
        return accepted


def train(config: ml_collections.ConfigDict, workdir: str | Path, *, stoppers: Sequence[Stopper] = ()) -> Run:
    """Trains `config` in `workdir`, exactly as `jaxmodels train`: resumes from its latest checkpoint if it has
    one, logs to metrics.jsonl and TensorBoard, checkpoints, and evaluates at the end.

    `stoppers` (jaxmodels.early_stopping.Stopper) may end the run after an evaluation, as early stopping does:
    a sweep's pruning uses this. SIGTERM or Ctrl-C saves a checkpoint at the current step and raises `Preempted`;
    calling again resumes.
    """
    _check_config_argument(config, "train")
    workdir = workdir_path(workdir)
    with PreemptionGuard() as guard:  # from the start: a SIGTERM while data loads or the step compiles stops cleanly
        experiment = build_experiment(config, workdir)  # validates everything it can before the workdir is touched
        with removed_if_failed(workdir):  # a run refused before it wrote anything leaves no empty workdir
            make_writable_dir(workdir, "workdir", "--workdir")
            with workdir_locked(workdir, warn=_warn):
                state, final = loop.train(experiment, workdir, stoppers, guard)
    return Run(workdir, experiment, state, int(jax.device_get(state.step)), final)


def _check_config_argument(config: Any, function: str) -> None:
    """TypeError unless `config` is a ConfigDict, saying how to get one from what was passed."""
    if isinstance(config, ml_collections.ConfigDict):
        return
    if isinstance(config, str | Path):
        how = f"load the file first: jm.{function}(jm.load_config({str(config)!r}), ...)"
    else:
        how = "load an experiment file with jm.load_config('experiments/mnist1d_cnn.py', ['train.num_steps=500'])"
    raise TypeError(f"jm.{function} expects a config (an ml_collections.ConfigDict), got {_shown(config)}; {how}")


def _check_run_argument(run: Any, function: str, *, exports: bool = False) -> None:
    """TypeError unless `run` is a Run (or, with `exports`, an export's model), saying how to get one from what
    was passed."""
    if isinstance(run, Run) or (exports and isinstance(run, ExportedModel)):
        return
    expected = "a Run or an export's model (jm.load_export, jm.from_pretrained)" if exports else "a Run"
    if isinstance(run, str | Path):
        is_export = exports and (Path(run) / EXPORT_FILE).is_file()
        loader, what = ("jm.load_export", "export") if is_export else ("jm.load", "workdir")
        how = f"load the {what} first: jm.{function}({loader}({str(run)!r}), ...)"
    else:
        how = "jm.load(workdir) or jm.train(config, workdir) returns one"
    raise TypeError(f"jm.{function} expects {expected}, got {_shown(run)}; {how}")


def _shown(value: Any) -> str:
    """A value named in an error: its type, and its text when that is short (a path)."""
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 80 else f"a {type(value).__name__}"


def _warn(message: str) -> None:
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


def load(workdir: str | Path, *, step: int | None = None, best: bool = False, overrides: Iterable[str] = ()) -> Run:
    """A workdir's run at its latest checkpoint, or at `step`, or with `best` at its best by
    `checkpoint.best_metric` (kept when `checkpoint.keep_best` was set). Reads only; moves nothing.

    `overrides` change the saved config (e.g. 'parallel.num_devices=1' to evaluate a multi-device run on one).
    """
    workdir = workdir_path(workdir)
    experiment = build_experiment(_saved_config(workdir, overrides), workdir)
    if not (workdir / "checkpoints").is_dir():
        raise JaxmodelsError(f"no checkpoint in {workdir / 'checkpoints'}; train first with `jaxmodels train`")
    checkpointer = Checkpointer.from_config(workdir, experiment.config, read_only=True)
    strategy = experiment.strategy
    target = abstract_like(strategy.canonical_state(experiment.initial_state))
    try:
        if step is None and not best:
            warn = functools.partial(print, file=sys.stderr)
            restored = checkpointer.restore_latest(target, None, None, warn=warn, set_aside=False)
            if restored is None:
                raise JaxmodelsError(f"no checkpoint in {checkpointer.directory}; train first with `jaxmodels train`")
            step, state = restored.step, restored.state
        else:
            step = _chosen_step(checkpointer, step, best)
            state = checkpointer.restore(step, target, None)
    finally:
        checkpointer.close()
    eval_prefix = f"{experiment.view.eval_name}/"
    row = next((row for row in read_history(workdir) if row.get("step") == step), {})
    final = {key: value for key, value in row.items() if key.startswith(eval_prefix)}
    return Run(workdir, experiment, state, step, final)


def _saved_config(workdir: Path, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise JaxmodelsError(f"{str(workdir)!r} holds no config.json: is it a jaxmodels workdir? Train into it first")
    return config_lib.apply_overrides(config_lib.load_saved_config(config_path), overrides)


def _chosen_step(checkpointer: Checkpointer, step: int | None, best: bool) -> int:
    if best:
        if step is not None:
            raise ConfigError("choose a checkpoint by step or by best, not both")
        best_step = checkpointer.best_step()
        if best_step is None:
            raise CheckpointError(
                f"no checkpoint with eval metrics in {checkpointer.directory}; was checkpoint.keep_best set?"
            )
        return best_step
    steps = checkpointer.all_steps()
    if step not in steps:
        raise CheckpointError(f"no checkpoint at step {step} in {checkpointer.directory}; it has {steps}")
    return step


def compile(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """`jaxmodels compile`: the config's train step compiled ahead of time for its batch, strategy and mesh,
    on abstract inputs (no parameter allocated); FLOPs and XLA's memory analysis per device. What the build
    decided (e.g. a size variant's sizes) is printed on stderr, as `train` logs it."""
    _check_config_argument(config, "compile")
    experiment = build_experiment(config)
    for note in experiment.notes:
        print(f"jaxmodels: {note}", file=sys.stderr)
    return compile_report(experiment)


def evaluate(run: Run) -> dict[str, float]:
    """The run's metrics on the eval split, exactly as `jaxmodels eval` computes them ('test/accuracy', ...)."""
    _check_run_argument(run, "evaluate")
    return run.experiment.evaluate(run.experiment.strategy.from_canonical(run.state))


def sample(
    run: Run | ExportedModel,
    prompt: str,
    num_tokens: int = 500,
    *,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Text from a language model (task lm) of a workdir or an export (`load_export`): `prompt` followed by
    `num_tokens` generated tokens, read and written with the model's tokenizer (a released GPT-2's BPE too)."""
    _check_run_argument(run, "sample", exports=True)
    tokenizer = run.tokenizer
    if run.config.task.name != "lm" or tokenizer is None:
        raise ConfigError(f"{str(run.workdir)!r} holds a {run.config.task.name!r} run; sampling needs task lm")
    check_tokenizer_fits(run.model, tokenizer)
    vocab_size = tokenizer.vocab_size
    if num_tokens < 0 or not temperature >= 0 or (top_k is not None and not 1 <= top_k <= vocab_size):  # NaN too
        raise ConfigError(
            f"sampling needs --num_tokens >= 0, --temperature >= 0 and --top_k between 1 and the vocabulary size "
            f"{vocab_size}; got --num_tokens {num_tokens}, --temperature {temperature}, --top_k {top_k}"
        )
    prompt_ids = tokenizer.encode(prompt)
    if len(prompt_ids) == 0:
        raise ConfigError("the prompt encodes to no tokens; give a --prompt")
    ids = generate(
        run.model, run.variables, jnp.asarray(prompt_ids, jnp.int32), num_tokens, jax.random.key(seed), temperature,
        top_k,
    )  # fmt: skip
    return tokenizer.decode(jax.device_get(ids))
