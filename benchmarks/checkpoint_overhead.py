"""What asynchronous checkpointing costs: the train loop with a save every 100 steps vs. only at the end.

One experiment (by default the small char-level GPT of experiments/shakespeare_char_gpt.py, 0.8M
parameters) is built and compiled once; then the loop (`jaxmodels.loop._run`, logging and evaluating as
the experiment says) runs from step 0 into fresh workdirs, alternating the two settings over several
rounds. We report the median wall time of each and the overhead. Both settings save at the last step.

    python benchmarks/checkpoint_overhead.py [--steps 600] [--every 100] [--rounds 3]
    python benchmarks/checkpoint_overhead.py --experiment experiments/mnist1d_cnn.py --steps 6000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxmodels import config as config_lib
from jaxmodels.checkpoint import Checkpointer
from jaxmodels.experiment import build_experiment
from jaxmodels.loop import _run
from jaxmodels.metric_writers import MetricWriter, ProgressDisplay
from jaxmodels.preemption import PreemptionGuard

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def timed_run(experiment, config, workdir: Path) -> float:
    """Seconds for the whole loop from step 0, pending saves included (the checkpointer is closed)."""
    state = jax.tree.map(jnp.copy, experiment.initial_state)  # the loop donates its input state
    checkpointer = Checkpointer.from_config(workdir, config)
    writer = MetricWriter(workdir, resume_step=0)
    progress = ProgressDisplay(config.train.num_steps, 0, enabled=False)
    started = time.perf_counter()
    with PreemptionGuard() as guard:
        _run(experiment, state, experiment.zero_metrics, 0, checkpointer, writer, progress, guard, stoppers=())
    checkpointer.close()  # waits for the last asynchronous save
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any other argument is a config override, e.g. --config.data.batch_size=64.",
    )
    parser.add_argument("--experiment", default=str(EXPERIMENTS / "shakespeare_char_gpt.py"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args, overrides = parser.parse_known_args()
    if not all(override.startswith("--config.") for override in overrides):
        parser.error(f"unrecognized arguments: {' '.join(overrides)} (config overrides start with --config.)")

    config = config_lib.load_config_file(args.experiment)
    config = config_lib.apply_overrides(
        config, [f"--config.train.num_steps={args.steps}", "--config.train.progress_bar=False", *overrides]
    )
    settings = {
        f"save every {args.every} steps (async)": args.every,
        "save only at the end": args.steps,
    }
    experiment = build_experiment(config)
    times: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as root:
        with config.unlocked():
            config.train.checkpoint_every = args.steps
        timed_run(experiment, config, Path(root) / "warmup")  # compiles the step, eval and save paths
        for round_index in range(args.rounds):
            for name, every in settings.items():
                with config.unlocked():
                    config.train.checkpoint_every = every
                times[name].append(timed_run(experiment, config, Path(root) / f"{round_index}-{every}"))
    medians = {name: statistics.median(values) for name, values in times.items()}
    with_saves, without = medians.values()
    result = {
        "experiment": args.experiment,
        "model": config.model.name,
        "steps": args.steps,
        "seconds": {name: round(value, 3) for name, value in medians.items()},
        "all_seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "saves": args.steps // args.every,
        "overhead_percent": round(100 * (with_saves / without - 1), 1),
        "device": str(jax.devices()[0]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
