"""The comparison's report: a Markdown table, a bar chart, and the generated section of docs/benchmarks.md.

`write` replaces only what lies between `BEGIN` and `END` in the Markdown file, so the prose around it (what
the numbers mean, what we found) survives a rerun of `make benchmarks`.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- frameworks.py: generated, begin -->", "<!-- frameworks.py: generated, end -->"
NAMES = {"jaxmodels": "jaxmodels", "torch": "PyTorch eager", "torch_compile": "torch.compile", "keras": "Keras 3 (JAX)"}


def machine() -> dict[str, Any]:
    """Where and when: CPU model, cores, date, and the versions of every framework measured."""
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "unknown")
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "torch", "keras"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average": os.getloadavg()[0],  # other jobs on the machine: 1-minute load at the start
    }


def _cpuinfo() -> list[str]:
    path = Path("/proc/cpuinfo")
    return path.read_text().splitlines() if path.exists() else []


def _rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for case, results in run["results"].items():
        flops = results.get("jaxmodels", {}).get("flops")
        peers = {name: r for name, r in results.items() if name != "jaxmodels" and "steps_per_s" in r}
        best_peer = max(peers.values(), key=lambda r: r["steps_per_s"], default=None)
        for name, result in results.items():
            if "error" in result:
                rows.append([case, NAMES[name], f"failed: {result['error'][:150]}", *[""] * 7])
                continue
            rate = result["steps_per_s"]
            achieved = flops * rate / 1e9 if flops else None
            rows.append(
                [
                    case,
                    NAMES[name],
                    f"{rate:,.1f}",
                    f"{rate / best_peer['steps_per_s']:.2f}" if best_peer else "",
                    _round_ratio_range(result, best_peer) if best_peer else "",
                    f"{result['first_step_s']:.1f}",
                    f"{result['peak_rss_mb']:,.0f}",
                    f"{flops / 1e6:,.1f}" if flops else "",
                    f"{achieved:,.1f}" if achieved else "",
                    f"{100 * achieved / run['matmul_gflops']:.1f}" if achieved else "",
                ]
            )
    return rows


def _round_ratio_range(result: dict[str, Any], best_peer: dict[str, Any]) -> str:
    """The lowest and highest of the framework's steps/s over the best peer's, round by round: how far one
    round's ratio strays from the medians' on a shared machine."""
    ratios = [rate / peer_rate for rate, peer_rate in zip(result["rates"], best_peer["rates"], strict=True)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


def table(run: dict[str, Any]) -> str:
    """The main table in Markdown: one row per case and framework."""
    header = ["case", "framework", "steps/s (median)", "/ best peer", "per round", "first step, s",
              "peak RSS, MB", "MFLOP/step", "GFLOP/s", "% of matmul peak"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(run)]
    return "\n".join(lines)


def jaxmodels_table(run: dict[str, Any]) -> str:
    """jaxmodels' own extras per case: feed rate (streamed feeds only) and one checkpoint save."""
    lines = ["| case | parameters | feed batches/s | step steps/s | checkpoint save, s |", "|---|---|---|---|---|"]
    for case, results in run["results"].items():
        result = results.get("jaxmodels", {})
        if "steps_per_s" not in result:
            continue
        feed = result["feed_batches_per_s"]
        feed_text = f"{feed:,.0f}" if feed else "resident (gathered per step)"
        lines.append(f"| {case} | {result['parameters']:,} | {feed_text} | {result['steps_per_s']:,.1f} | "
                     f"{result['checkpoint_save_s']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def plot(run: dict[str, Any], path: Path) -> None:
    """Grouped bars: each framework's steps/s relative to jaxmodels, per case (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(run["results"])
    frameworks = list(NAMES)
    figure, axes = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(frameworks)
    for i, name in enumerate(frameworks):
        ratios = []
        for case in cases:
            results = run["results"][case]
            own, base = results.get(name, {}).get("steps_per_s"), results.get("jaxmodels", {}).get("steps_per_s")
            ratios.append(own / base if own and base else 0.0)
        axes.bar([c + (i - (len(frameworks) - 1) / 2) * width for c in range(len(cases))], ratios, width,
                 label=NAMES[name])  # fmt: skip
    axes.axhline(1.0, color="gray", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xticks(range(len(cases)), cases, rotation=20)
    axes.set_ylabel("steps/s relative to jaxmodels")
    axes.set_title(f"Train steps/s on {run['cores']} CPU cores ({run['date']}); missing bar: failed or not run")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def generated_section(run: dict[str, Any], image: str) -> str:
    versions = ", ".join(f"{package} {version}" for package, version in run["versions"].items())
    return "\n\n".join(
        [
            BEGIN,
            f"Measured {run['date']} on {run['cpu']}, {run['cores']} cores (Python {run['python']}; {versions}; "
            f"XLA_FLAGS={run['xla_flags']!r}; 1-minute load average at the start {run['load_average']:.1f}). "
            f"{run['rounds']} interleaved rounds of {run['seconds']:g} s per "
            f"framework; jitted 2048x2048 float32 matmul peak in this run: {run['matmul_gflops']:,.0f} GFLOP/s.",
            table(run),
            f"![steps/s relative to jaxmodels]({image})",
            "jaxmodels' feed and checkpointing on the same cases:",
            jaxmodels_table(run),
            END,
        ]
    )


def write(run: dict[str, Any], path: Path) -> None:
    """Writes the plot and raw JSON next to `path` and the generated section into it (the rest is kept)."""
    image = path.with_suffix(".png")
    plot(run, image)
    path.with_suffix(".json").write_text(json.dumps(run, indent=1))
    section = generated_section(run, image.name)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(before + section + after)
