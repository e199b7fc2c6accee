"""Where a result was computed: the commit, the software and the CPU, for notebooks and benchmark records.

A run is bitwise reproducible for a seed only on the same machine type and software: XLA compiles for the
instruction set of the CPU it runs on (AVX-512, AVX2, ...), and convolution and matmul kernels built for
another one round differently, which a few hundred steps amplify into different per-seed results. So every
published number carries this record, and a reader on another machine compares with the seed spread.

    print(jm.provenance())        # one line per field
    jm.provenance().as_dict()     # for JSON or notebook metadata
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
# XLA's CPU instruction-set levels, highest first, each with the /proc/cpuinfo flags that mean it is usable.
ISA_LEVELS = (
    ("AVX512", ("avx512f", "avx512bw", "avx512dq", "avx512vl")),
    ("AVX2", ("avx2", "fma")),
    ("AVX", ("avx",)),
    ("SSE4_2", ("sse4_2",)),
)


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The commit, the package versions and the CPU a computation ran on."""

    commit: str  # the jaxmodels checkout's HEAD, '+ changes' when tracked files differ from it
    packages: dict[str, str]  # distribution name -> version
    python: str
    cpu: str  # model name as the OS reports it
    isa: str  # the highest instruction set XLA may use here: the CPU's, or the cap --xla_cpu_max_isa sets
    xla_flags: str  # the XLA_FLAGS environment variable, '' when unset

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        versions = ", ".join(f"{name} {version}" for name, version in self.packages.items())
        lines = [
            f"jaxmodels commit: {self.commit}",
            f"software: Python {self.python}, {versions}",
            f"CPU: {self.cpu}, {os.cpu_count()} cores visible; XLA instruction set: {self.isa}",
        ]
        if self.xla_flags:
            lines.append(f"XLA_FLAGS: {self.xla_flags}")
        return "\n".join(lines)


def provenance() -> Provenance:
    """The record of this process: what a result computed here should be published with."""
    flags = os.environ.get("XLA_FLAGS", "")
    return Provenance(
        commit=_commit(Path(__file__).resolve().parent.parent),
        packages={name: _version(name) for name in PACKAGES},
        python=platform.python_version(),
        cpu=_cpu_model(),
        isa=_isa(_cpu_flags(), flags),
        xla_flags=flags,
    )


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit(checkout: Path) -> str:
    """HEAD of the git checkout jaxmodels is imported from, or why there is none (an installed wheel)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head} + changes" if changed else head


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> set[str]:
    match = re.search(r"^flags\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _isa(cpu_flags: set[str], xla_flags: str) -> str:
    """The CPU's highest level XLA knows (by its flags), lowered to a --xla_cpu_max_isa cap if one is set."""
    names = [name for name, _ in ISA_LEVELS]
    available = next((name for name, needs in ISA_LEVELS if set(needs) <= cpu_flags), None)
    if available is None:  # not x86 Linux: XLA picks the machine's own (e.g. NEON on arm64)
        available = platform.machine() or "unknown"
    match = re.search(r"--xla_cpu_max_isa=(\w+)", xla_flags)
    cap = match.group(1).upper() if match else None
    if cap in names and available in names and names.index(cap) > names.index(available):
        return f"{cap} (capped by --xla_cpu_max_isa; the CPU has {available})"
    return available
