"""jm.provenance(): the commit, software and CPU a result was computed on, and the XLA instruction-set cap."""

from __future__ import annotations

import re
import subprocess
import sys

import jaxmodels as jm
from jaxmodels import reproducibility


def test_the_record_names_the_checkout_versions_and_cpu():
    record = jm.provenance()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert record.commit.split()[0] == head
    assert record.packages["jax"] == __import__("jax").__version__
    assert record.python == ".".join(map(str, sys.version_info[:3]))
    text = str(record)
    for fact in (record.commit, f"jax {record.packages['jax']}", record.cpu, record.isa):
        assert fact in text
    assert set(record.as_dict()) == {"commit", "packages", "python", "cpu", "isa", "xla_flags"}


def test_the_instruction_set_is_the_cpus_highest_or_the_xla_cap():
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "avx", "sse4_2"}
    assert reproducibility._isa(avx512, "") == "AVX512"
    assert reproducibility._isa(avx512 - {"avx512bw"}, "") == "AVX2"
    assert reproducibility._isa({"avx", "sse4_2"}, "") == "AVX"
    assert (
        reproducibility._isa(avx512, "--xla_cpu_max_isa=AVX2")
        == "AVX2 (capped by --xla_cpu_max_isa; the CPU has AVX512)"
    )
    assert reproducibility._isa({"avx", "sse4_2"}, "--xla_cpu_max_isa=AVX512") == "AVX"  # a cap above is no cap


def test_outside_a_checkout_the_commit_says_so(tmp_path):
    assert reproducibility._commit(tmp_path) == "unknown (not a git checkout)"
    assert re.fullmatch(r"[0-9a-f]{40}( \+ changes)?", jm.provenance().commit)
