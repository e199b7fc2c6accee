"""Ahead-of-time compilation of an experiment's train step: does it fit, and what does a step cost?

`jaxmodels compile` lowers and compiles the very step the train loop runs (`Experiment.loop_step`: the
batch gathered or received, the train step with every option of the config, metric sums, donation) for
the config's batch, strategy and mesh, on abstract inputs: no parameter is allocated. It reports FLOPs per
step and device and XLA's memory analysis, plus the bytes of parameters and optimizer state each device
holds under the strategy.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from jaxmodels.experiment import Experiment


def state_bytes_per_device(state: Any) -> int:
    """Bytes of `state` (arrays or ShapeDtypeStructs with shardings) that the most loaded device holds."""
    total = 0
    for leaf in jax.tree.leaves(state):
        shard = leaf.sharding.shard_shape(leaf.shape) if getattr(leaf, "sharding", None) else leaf.shape
        total += math.prod(shard) * np.dtype(leaf.dtype).itemsize
    return total


def compile_report(experiment: Experiment) -> dict[str, Any]:
    """Per-device numbers of one train step of `experiment`, from XLA's cost and memory analyses."""
    strategy, config = experiment.strategy, experiment.config
    compiled = experiment.lower_step().compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    memory = compiled.memory_analysis()
    held = strategy.state_held_per_device(experiment.abstract_state)
    return {
        "model": config.model.name,
        "strategy": strategy.name,
        "devices": math.prod(strategy.mesh_shape.values()),
        "mesh": strategy.mesh_shape,
        "batch_size": config.data.batch_size,
        "parameters": sum(math.prod(x.shape) for x in jax.tree.leaves(experiment.abstract_state.params)),
        "flops_per_device": float(cost.get("flops", 0.0)) if cost else 0.0,
        "params_bytes_per_device": state_bytes_per_device(held.params),
        "state_bytes_per_device": state_bytes_per_device(held),
        "argument_bytes": memory.argument_size_in_bytes,
        "output_bytes": memory.output_size_in_bytes,
        "temp_bytes": memory.temp_size_in_bytes,
        "alias_bytes": memory.alias_size_in_bytes,
        "generated_code_bytes": memory.generated_code_size_in_bytes,
    }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{int(n):,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def format_report(report: dict[str, Any]) -> str:
    """`compile_report`'s numbers as the lines `jaxmodels compile` prints."""
    total = report["argument_bytes"] + report["output_bytes"] + report["temp_bytes"] - report["alias_bytes"]
    return "\n".join(
        [
            f"{report['model']}: {report['parameters']:,} parameters, strategy {report['strategy']} on "
            f"{report['devices']} devices, mesh {report['mesh']}, global batch {report['batch_size']}",
            f"  FLOPs per step, per device:        {report['flops_per_device']:,.0f}",
            f"  parameters held per device:        {_size(report['params_bytes_per_device'])}",
            f"  params + optimizer state / device: {_size(report['state_bytes_per_device'])}",
            f"  XLA memory per device: arguments {_size(report['argument_bytes'])}, outputs "
            f"{_size(report['output_bytes'])} ({_size(report['alias_bytes'])} aliased to donated inputs), "
            f"temporaries {_size(report['temp_bytes'])}",
            f"  peak estimate per device:          {_size(total)}",
        ]
    )
