"""Parameters in and out of a run: export for inference or fine-tuning, and start a new run from them.

`jaxmodels export` writes a checkpoint's params (and model state, e.g. BatchNorm statistics) to a directory of
its own; `checkpoint.init_from` starts a new run from such an export or from a workdir's latest checkpoint,
loading every parameter whose path and shape fit (`jaxmodels.partial_loading`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxmodels import config as config_lib
from jaxmodels.background_errors import silence_echoes
from jaxmodels.checkpoint import READ_ATTEMPTS, Checkpointer, removed_meanwhile
from jaxmodels.errors import CheckpointError
from jaxmodels.files import first_line, make_writable_dir, read_json_object
from jaxmodels.partial_loading import load_partial

EXPORT_FILE = "jaxmodels_export.json"
EXPORT_FORMAT = "jaxmodels-params-v1"


def read_variables(workdir: Path, step: int) -> dict[str, Any]:
    """params and model_state of a workdir's checkpoint `step` (not the optimizer state), as saved: no model
    is built and no target structure is needed."""
    path = workdir.absolute() / "checkpoints" / str(step) / "state"
    try:
        with ocp.PyTreeCheckpointer() as reader:
            saved = reader.metadata(path).item_metadata.tree
            target = jax.tree.map(
                lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype),
                {"params": saved["params"], "model_state": saved.get("model_state", {})},
            )
            args = ocp.args.PyTreeRestore(
                item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True
            )
            return reader.restore(path, args=args)
    except Exception as error:  # whatever Orbax and TensorStore raise on truncated, garbled or missing files
        silence_echoes(reported=True)
        raise CheckpointError(
            f"the checkpoint at step {step} in {path.parent.parent} cannot be read ({type(error).__name__}: "
            f"{first_line(error)}); it is damaged: choose another with --step, or restore it"
        ) from None


def export_params(workdir: str | Path, out: str | Path, *, step: int | None = None, best: bool = False) -> dict:
    """Writes the params (and model state) of a workdir's checkpoint to `out` for inference or fine-tuning.

    Picks the latest checkpoint, or `step`, or with `best` the best by the run's `checkpoint.best_metric`.
    `out` gets `params/` (an Orbax checkpoint of {'params', 'model_state'}), jaxmodels_export.json
    (model config, source step) and the workdir's tokenizer files, if any. Returns that JSON's contents.
    Refuses to overwrite a non-empty `out`.
    """
    workdir, out = Path(workdir).absolute(), Path(out).absolute()
    check_new_export_dir(out)
    variables, info = read_checkpoint(workdir, step=step, best=best)
    info = write_export(out, variables, info)
    for kept in workdir.glob("tokenizer*"):  # a run that starts from the export reads text the same way
        if kept.is_dir():  # a released tokenizer's files (jaxmodels.data.pretrained_tokenizers.KEPT_DIR)
            shutil.copytree(kept, out / kept.name)
        elif kept.name.startswith("tokenizer_"):
            shutil.copyfile(kept, out / kept.name)
    return info


def read_checkpoint(
    workdir: Path, *, step: int | None = None, best: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """{'params', 'model_state'} of a workdir's checkpoint (the latest, `step`, or with `best` the best by the
    run's `checkpoint.best_metric`) and what an export records of it: source, step, model config and task."""
    if not (workdir / "checkpoints").is_dir():
        raise CheckpointError(f"{str(workdir)!r} holds no checkpoints; train into it first with `jaxmodels train`")
    config_path = workdir / "config.json"
    config = config_lib.load_saved_config(config_path).to_dict() if config_path.is_file() else {}
    checkpoint_cfg = config.get("checkpoint", {})
    checkpointer = Checkpointer(
        workdir,
        save_every=1,
        keep=1,
        keep_best=1 if best else 0,
        best_metric=checkpoint_cfg.get("best_metric", "test/accuracy"),
        best_mode=checkpoint_cfg.get("best_mode", "max"),
        read_only=True,
    )
    chosen = step
    try:
        for attempt in range(READ_ATTEMPTS):  # a train beside this may remove the chosen step: choose again
            steps = checkpointer.all_steps()
            if chosen is None:
                step = checkpointer.best_step() if best else checkpointer.latest_step()
                if step is None:
                    kind = "checkpoint with eval metrics (was checkpoint.keep_best set?)" if best else "checkpoint"
                    raise CheckpointError(f"no {kind} in {checkpointer.directory}")
            elif step not in steps:
                raise CheckpointError(f"no checkpoint at step {step} in {checkpointer.directory}; it has {steps}")
            saved_config_file = checkpointer.saved_config_file(step)
            try:
                variables = read_variables(workdir, step)
                break
            except CheckpointError:
                last_try = chosen is not None or attempt == READ_ATTEMPTS - 1
                if last_try or not removed_meanwhile(checkpointer.directory / str(step)):
                    raise
            checkpointer.reload()
    finally:
        checkpointer.close()
    source_config = read_json_object(saved_config_file, CheckpointError) if saved_config_file.is_file() else {}
    info = {
        "source": str(workdir),
        "step": int(step),
        "model": source_config.get("model", config.get("model", {})),
        "task": source_config.get("task", config.get("task", {})).get("name"),  # what `sample`, `fill-mask` expect
    }
    return variables, info


def load_params(path: str | Path) -> tuple[dict[str, Any], str]:
    """{'params', 'model_state'} from an export dir (`jaxmodels export`) or a workdir's latest checkpoint.

    Returns them with a description of where they came from, for logs.
    """
    path = Path(path).absolute()
    if (path / EXPORT_FILE).is_file():
        with ocp.StandardCheckpointer() as reader:
            variables = reader.restore(path / "params")
        info = json.loads((path / EXPORT_FILE).read_text())
        return variables, f"export {path} (step {info.get('step')} of {info.get('source')})"
    if (path / "checkpoints").is_dir():
        checkpointer = Checkpointer(path, save_every=1, keep=1, read_only=True)
        try:
            step = checkpointer.latest_step()
        finally:
            checkpointer.close()
        if step is None:
            raise CheckpointError(f"workdir {str(path)!r} holds no checkpoint to load parameters from")
        return read_variables(path, step), f"checkpoint {path / 'checkpoints' / str(step)}"
    raise CheckpointError(
        f"{str(path)!r} is neither a parameter export (made by `jaxmodels export`) nor a workdir with checkpoints"
    )


def init_from_pretrained(state: Any, path: str | Path, *, subtree: str = "", log: Callable[[str], None]) -> Any:
    """`state` with params (and model state) loaded from `path` where they fit; the rest keeps its init.

    For `config.checkpoint.init_from`. Logs a report of what was loaded, newly initialised and skipped.
    The optimizer state is left as initialised: for the optimizers of jaxmodels.optim (Adam, AdamW, SGD,
    clipping, weight decay) it depends only on the parameters' shapes, not their values.
    """
    variables, source = load_params(path)
    params, report = load_partial(state.params, variables["params"], subtree=subtree)
    model_state = state.model_state
    if state.model_state and variables.get("model_state"):
        model_state, _ = load_partial(state.model_state, variables["model_state"])
    log(f"initialised from {source}: {report.summary()}")
    return state.replace(params=jax.device_put(params), model_state=jax.device_put(model_state))


def check_new_export_dir(out: Path) -> None:
    """CheckpointError unless `out` is free for an export: missing, or an empty directory."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        problem = "is not empty" if out.is_dir() else "is a file"
        raise CheckpointError(f"export directory {str(out.absolute())!r} {problem}; choose a new --out")


def write_export(out: Path, variables: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Writes `variables` ({'params', 'model_state'}) to `out`/params and `info` (with the format and the
    parameter count added) to `out`/jaxmodels_export.json; returns what it wrote there."""
    make_writable_dir(out, "export directory", "--out")
    with ocp.StandardCheckpointer() as writer:
        writer.save(out.absolute() / "params", variables)
        writer.wait_until_finished()
    num_params = int(sum(np.size(leaf) for leaf in jax.tree.leaves(variables["params"])))
    info = {"format": EXPORT_FORMAT, **info, "num_params": num_params}
    (out / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info
