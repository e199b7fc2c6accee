"""Does the input pipeline keep up? Batches/s each experiment's feed delivers vs steps/s its train step consumes.

For every experiment file given, builds the experiment exactly as `jaxmodels train` does, then times,
side by side in one process: (a) the feed alone — `feed.args_for_step(i)`, i.e. Grain reading,
transforming and batching in its background threads; (b) the compiled loop step alone, on one fixed
batch. Record datasets are forced onto the Grain loader (`--config.data.loader=grain`) so the
streamed path is what gets measured; their default resident loader gathers batches inside the step
and has no separate pipeline. The target: the feed delivers at least 5x what the step consumes.

    python benchmarks/feed_vs_step.py experiments/digits_lenet5.py experiments/shakespeare_char_gpt.py ...
"""

from __future__ import annotations

import argparse
import time

import jax

from jaxmodels import config as config_lib
from jaxmodels.experiment import build_experiment


def rate(run, seconds: float) -> float:
    """Calls per second of `run(i)` over about `seconds`, after one warm-up call."""
    run(0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += 1
        run(count)
    return count / (time.perf_counter() - start)


def measure(path: str, seconds: float, overrides: list[str]) -> tuple[str, float, float, int]:
    config = config_lib.load_config_file(path)
    if config.task.name in ("classify", "seq2seq"):
        overrides = ["--config.data.loader=grain", *overrides]
    config = config_lib.apply_overrides(config, ["--config.data.eval_windows=8", *overrides])
    experiment = build_experiment(config)
    feed = experiment.feed
    feed_rate = rate(lambda i: feed.args_for_step(i), seconds)
    state = jax.tree.map(lambda x: x.copy(), experiment.initial_state)
    sums = experiment.strategy.put_replicated(experiment.zero_metrics)
    args = feed.args_for_step(0)

    def step(_: int) -> None:
        nonlocal state, sums
        state, sums = experiment.loop_step(state, sums, *args)
        jax.block_until_ready(sums)

    return config.model.name, feed_rate, rate(step, seconds), config.data.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--workers", type=int, default=0, help="Grain worker processes (data.workers)")
    args = parser.parse_args()
    overrides = [f"--config.data.workers={args.workers}"]
    overrides += [f"--config.data.data_dir={args.data_dir}"] if args.data_dir else []
    print("| experiment | model | batch | feed batches/s | step steps/s | feed / step |")
    print("|---|---|---|---|---|---|")
    for path in args.experiments:
        model, feed_rate, step_rate, batch = measure(path, args.seconds, overrides)
        print(f"| `{path}` | {model} | {batch} | {feed_rate:,.0f} | {step_rate:,.1f} | {feed_rate / step_rate:.1f}x |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
