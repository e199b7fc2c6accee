"""Orbax checkpoints of a run: train state + data-iterator position, every N steps, last K kept.

A checkpoint is only read into a state of the same structure and shapes; otherwise we raise a
`CheckpointError` that names the mismatched parameter paths, before anything is written, so an
existing checkpoint is never overwritten by a run of a different model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from flax import serialization, traverse_util

from jaxmodels.errors import CheckpointError

_MAX_LISTED = 5


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat = traverse_util.flatten_dict(tree, sep="/")
    return {path: tuple(leaf.shape) for path, leaf in flat.items()}


def _leaf_shapes(tree: Any) -> list[tuple[int, ...]]:
    return [tuple(leaf.shape) for leaf in jax.tree.leaves(tree)]


def describe_mismatch(saved: Any, expected: Any) -> list[str]:
    """Human-readable differences between two state trees (of shapes): missing, extra, reshaped."""
    saved, expected = _flat_shapes(saved), _flat_shapes(expected)
    problems = [
        f"{path} {saved[path]} in the checkpoint vs {shape} now"
        for path, shape in expected.items()
        if path in saved and saved[path] != shape
    ]
    problems += [f"{path} missing from the checkpoint" for path in expected if path not in saved]
    problems += [f"{path} only in the checkpoint" for path in saved if path not in expected]
    return problems


class Checkpointer:
    """The run's checkpoint directory `<workdir>/checkpoints`, managed by an Orbax CheckpointManager."""

    def __init__(self, workdir: Path, *, save_every: int, keep: int):
        self.save_every = save_every
        self.directory = (workdir / "checkpoints").absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
        handlers = {"state": ocp.StandardCheckpointHandler(), "data": grain.checkpoint.CheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def should_save(self, step: int) -> bool:
        """Whether `step` falls on the save interval (plain arithmetic: this runs every step)."""
        return step % self.save_every == 0

    def check_compatible(self, step: int, abstract_state: Any) -> None:
        """Raises CheckpointError if checkpoint `step` does not fit `abstract_state` exactly."""
        saved = self._manager.item_metadata(step)["state"].tree
        expected = serialization.to_state_dict(abstract_state)
        problems = describe_mismatch(saved.get("params", {}), expected["params"])
        if problems:
            shown = "; ".join(problems[:_MAX_LISTED])
            more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
            raise CheckpointError(
                f"the checkpoint at step {step} in {self.directory} was written by a different model "
                f"(parameters differ: {shown}{more}); use a new --workdir, or the config that wrote it "
                f"({self.directory.parent / 'config.json'})"
            )
        for part in ("opt_state", "model_state"):  # structures differ in naming, so compare leaf shapes
            if _leaf_shapes(saved.get(part, {})) != _leaf_shapes(expected[part]):
                raise CheckpointError(
                    f"the checkpoint at step {step} in {self.directory} has a different {part} than this config "
                    f"builds (another optimizer or model settings?); use a new --workdir, or the config that wrote "
                    f"it ({self.directory.parent / 'config.json'})"
                )

    def restore(self, step: int, abstract_state: Any, data_iterator: grain.DatasetIterator | None) -> Any:
        """Restores train state (and the data iterator's position, in place) from checkpoint `step`."""
        self.check_compatible(step, abstract_state)
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"]

    def save(self, step: int, state: Any, data_iterator: grain.DatasetIterator | None, *, force: bool = False) -> bool:
        """Saves asynchronously if `step` is due (or `force`); training continues meanwhile."""
        items = {"state": ocp.args.StandardSave(state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        return self._manager.save(step, args=ocp.args.Composite(**items), force=force)

    def close(self) -> None:
        """Waits for pending saves to finish, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def abstract_like(state: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of `state`: the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
