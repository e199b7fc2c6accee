"""jaxmodels side by side with PyTorch (eager and torch.compile) and Keras 3 (JAX backend) on the same cases.

Every case (benchmarks/peers/cases.py: the MNIST-1D CNN, MLP and GRU, the char GPT and LSTM, a CIFAR ResNet-20,
a small BERT-MLM) is one jaxmodels experiment; each peer trains the same architecture, initialisation, batches
(written by the jaxmodels worker from its own feed), dtype (float32) and optimizer. Each framework runs in its
own long-lived worker process (benchmarks/peers/worker.py), started one after another so compilations never
overlap; then `--rounds` timing rounds of `--seconds` each run the workers one at a time, in a rotating order
(interleaved), and we report the median steps/s. Also per worker: time to the end of the first step (build and
compile), peak resident memory; for jaxmodels the FLOPs per step (XLA's cost analysis, as `jaxmodels compile`),
used for every framework's achieved GFLOP/s and its utilisation of the float32 matmul peak measured in this run,
the feed's batches/s and the time of one checkpoint save. `--out` writes docs/benchmarks.md (between its
generated-section markers), its plot and the raw numbers as JSON.

    python benchmarks/frameworks.py                                  # every case, 5 rounds of 2 s
    python benchmarks/frameworks.py --cases mnist1d_cnn --rounds 2 --seconds 1 --out ''   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from peers import report
from peers.cases import CASES
from peers.worker import FRAMEWORKS, PREFIX, matmul_peak, serve

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A worker process and the answers it sends (a reader thread keeps its stdout drained)."""

    def __init__(self, arguments: list[str], log: Path, env: dict[str, str]):
        self._log = log.open("w")
        self.log_path = log
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                self._answers.put(json.loads(line[len(PREFIX) :]))
        self._answers.put(None)  # the process ended

    def ask(self, request: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        """Sends `request` (None: only waits) and returns the answer; RuntimeError with the log's tail if none."""
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            answer = None
        if answer is None:
            self.process.wait()
            tail = self.log_path.read_text().strip().splitlines()[-3:]
            raise RuntimeError(" / ".join(tail) or f"worker ended with code {self.process.returncode}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log.close()


def worker_env(framework: str) -> dict[str, str]:
    """The environment of a worker: this one's, with Keras on its JAX backend, and PyTorch's OpenMP threads
    sleeping rather than spinning while they wait: on a machine shared with other jobs, spinning threads of a
    2-thread pool made a 100x40 @ 40x100 matmul about 80x slower (92 vs 7,400 per second, docs/benchmarks.md)."""
    env = dict(os.environ)
    if framework == "keras":
        env["KERAS_BACKEND"] = "jax"
    if framework.startswith("torch"):
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def measure_peak(logs: Path) -> float:
    worker = Worker(["peak"], logs / "peak.log", worker_env("jaxmodels"))
    try:
        return worker.ask(None, timeout=120)["gflops"]
    finally:
        worker.close()


def interleaved_rounds(workers: dict[str, Worker], rounds: int, seconds: float) -> dict[str, list[float]]:
    """{name: steps/s of each round}: every worker times `seconds` in each round, one at a time, the order rotated
    each round, so that a slow spell of a shared machine hits all of them alike."""
    rates: dict[str, list[float]] = {name: [] for name in workers}
    for round_index in range(rounds):
        order = list(workers)
        for name in order[round_index % len(order) :] + order[: round_index % len(order)]:
            answer = workers[name].ask({"op": "time", "seconds": seconds}, timeout=10 * seconds + 60)
            rates[name].append(answer["steps"] / answer["seconds"])
    return rates


def measure_case(case: str, frameworks: list[str], args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Starts the case's workers one by one, times them in interleaved rounds, collects their numbers."""
    results: dict[str, dict[str, Any]] = {}
    workers: dict[str, Worker] = {}
    data = logs / f"{case}.npz"
    try:
        for framework in frameworks:  # jaxmodels first: it writes the batches the others read
            arguments = [framework, case, str(data), str(args.seconds / 4), *args.overrides]
            worker = Worker(arguments, logs / f"{case}-{framework}.log", worker_env(framework))
            workers[framework] = worker
            try:
                results[framework] = worker.ask(None, timeout=args.startup_timeout)
            except RuntimeError as error:
                results[framework] = {"error": str(error)}
                worker.close()
                del workers[framework]
                if framework == "jaxmodels":
                    return results  # no batches for the peers
            print(f"  {case} {framework}: {results[framework]}", flush=True)
        for framework, rates in interleaved_rounds(workers, args.rounds, args.seconds).items():
            results[framework]["rates"] = rates
        for framework, worker in workers.items():
            results[framework].update(worker.ask({"op": "finish"}, timeout=300))
            results[framework]["steps_per_s"] = statistics.median(results[framework]["rates"])
            print(f"  {case} {framework}: {results[framework]['steps_per_s']:.1f} steps/s", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    names = ", ".join(FRAMEWORKS)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help=f"comma-separated, of {names}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds; the median is reported")
    parser.add_argument("--seconds", type=float, default=2.0, help="of each framework in each round")
    parser.add_argument("--startup_timeout", type=float, default=300.0, help="build + first step + warm-up, s")
    parser.add_argument("--overrides", nargs="*", default=[], help="jaxmodels config overrides for every case")
    parser.add_argument("--out", default="docs/benchmarks.md", help="the report ('' prints the table only)")
    args = parser.parse_args()
    cases, frameworks = args.cases.split(","), args.frameworks.split(",")
    unknown = sorted(set(frameworks) - set(FRAMEWORKS)) + sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}: --cases takes {', '.join(CASES)}; --frameworks takes {names}")
    if frameworks[0] != "jaxmodels":
        parser.error("--frameworks must start with jaxmodels: it writes the batches the others train on")
    with tempfile.TemporaryDirectory() as logs:
        peaks = [measure_peak(Path(logs))]
        results = {}
        for case in cases:
            print(f"{case}:", flush=True)
            results[case] = measure_case(case, frameworks, args, Path(logs))
        peaks.append(measure_peak(Path(logs)))
    run = {**report.machine(), "matmul_gflops": max(peaks), "rounds": args.rounds, "seconds": args.seconds,
           "overrides": args.overrides, "results": results}  # fmt: skip
    print(report.table(run))
    if args.out:
        report.write(run, ROOT / args.out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        if sys.argv[2] == "peak":
            matmul_peak()
        else:
            framework, case, data, chunk, *overrides = sys.argv[2:]
            serve(framework, case, Path(data), overrides, float(chunk))
    else:
        main()
