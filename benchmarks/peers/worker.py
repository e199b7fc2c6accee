"""One framework training one case in this process, timed on the driver's request (benchmarks/frameworks.py).

The worker builds the case, times its first step, warms up while it picks how many steps one timed call runs,
then answers the driver's requests, one JSON line each way: {"op": "time", "seconds": s} runs whole calls for
about s seconds and answers the steps and seconds; {"op": "finish"} answers the peak resident memory (measured
before anything else runs) and the framework's extra numbers, then exits. Answers are printed on stdout behind
`PREFIX`, so what the libraries print there is told apart.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

PREFIX = "@@result "
FRAMEWORKS = ("jaxmodels", "torch", "torch_compile", "keras")


def send(message: dict[str, Any]) -> None:
    print(PREFIX + json.dumps(message), flush=True)


def build(framework: str, case: str, data: Path, overrides: list[str]) -> tuple[Any, float]:
    """The framework's runner for `case` (its constructor runs the first step) and the seconds it took.

    jaxmodels writes the shared batches to `data` after its first step; the peers read them before theirs.
    """
    if framework == "jaxmodels":
        from peers.jaxmodels_runner import JaxmodelsRunner

        start = time.perf_counter()
        runner = JaxmodelsRunner(case, overrides)
        seconds = time.perf_counter() - start
        runner.save_batches(data)
        return runner, seconds
    from peers.cases import load_batches

    batches, config = load_batches(data)
    if framework == "keras":
        from peers.keras_models import KerasRunner

        start = time.perf_counter()
        return KerasRunner(case, batches, config), time.perf_counter() - start
    from peers.torch_models import TorchRunner

    start = time.perf_counter()
    return TorchRunner(case, batches, config, compiled=framework == "torch_compile"), time.perf_counter() - start


def calibrate(runner: Any, chunk_seconds: float) -> int:
    """Doubles the steps per call until one call lasts `chunk_seconds` (this is also the warm-up)."""
    steps = 1
    while True:
        start = time.perf_counter()
        runner.run(steps)
        if time.perf_counter() - start >= chunk_seconds or steps >= 4096:
            runner.run(steps)  # once more at the chosen length: Keras builds its arrays per length
            return steps
        steps *= 2


def serve(framework: str, case: str, data: Path, overrides: list[str], chunk_seconds: float) -> None:
    runner, first_step = build(framework, case, data, overrides)
    steps = calibrate(runner, chunk_seconds)
    send({"first_step_s": first_step, "steps_per_call": steps})
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "time":
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < request["seconds"]:
                runner.run(steps)
                done += steps
            send({"steps": done, "seconds": time.perf_counter() - start})
        elif request["op"] == "finish":
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            extras = runner.extras() if hasattr(runner, "extras") else {}
            send({"peak_rss_mb": peak_mb, **extras})
            return


def matmul_peak(size: int = 2048, seconds: float = 2.0) -> None:
    """Sends the float32 GFLOP/s of a jitted size x size matmul: the utilisation's reference."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ a)
    x = matmul(a).block_until_ready()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = matmul(x) * 1e-3  # keeps the values finite
        count += 1
    x.block_until_ready()
    send({"gflops": 2 * size**3 * count / (time.perf_counter() - start) / 1e9})
