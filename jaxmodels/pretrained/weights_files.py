"""Weight files in and out: a Hugging Face directory's safetensors, read as float32 numpy arrays, and written.

A directory holds `model.safetensors`, or shards listed in `model.safetensors.index.json` (its `weight_map`
names the file of every tensor). Tensors are read with the `safetensors` library's numpy API (no PyTorch);
float16 and bfloat16 (which numpy lacks: its raw bytes are widened) load as float32. A file that is truncated
or not safetensors at all, a shard the index names but the directory lacks, and PyTorch pickles
(`pytorch_model.bin`, `*.pth`, `*.pt`: reading one runs the code inside it) are each a `CheckpointError` that
says what to do. Nothing here knows which model the tensors belong to.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from jaxmodels.errors import CheckpointError
from jaxmodels.files import first_line, read_json_object

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_PATTERNS = ("pytorch_model*.bin", "*.pth", "*.pt", "*.ckpt")
TO_SAFETENSORS = (
    "convert it in Python where you trust the file: `import torch; from safetensors.torch import save_file; "
    "save_file(torch.load(PATH, weights_only=True), 'model.safetensors')` (or `model.save_pretrained(DIR)` "
    "in transformers, which writes safetensors)"
)
# How the floating-point dtypes of safetensors are stored (little-endian); all are read as float32.
FLOAT_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8")}


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files holding `directory`'s tensors: model.safetensors, or the shards its index names.

    CheckpointError if there are none (pickles refused, with how to convert them) or a named shard is missing.
    """
    if (directory / INDEX_FILE).is_file():
        weight_map = read_json_object(directory / INDEX_FILE, CheckpointError).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{directory / INDEX_FILE} has no weight_map; restore it from the release")
        shards = [directory / name for name in sorted(set(weight_map.values()))]
        missing = [shard.name for shard in shards if not shard.is_file()]
        if missing:
            raise CheckpointError(
                f"{directory / INDEX_FILE} names shards that {directory} lacks: {', '.join(missing)}; "
                "download the whole release"
            )
        return shards
    if (directory / WEIGHTS_FILE).is_file():
        return [directory / WEIGHTS_FILE]
    refuse_pickles(directory)
    raise CheckpointError(
        f"{directory} holds no weights: expected {WEIGHTS_FILE} or {INDEX_FILE} with its shards "
        "(e.g. from `huggingface-cli download NAME --local-dir DIR`)"
    )


def refuse_pickles(directory: Path) -> None:
    """CheckpointError if `directory` holds PyTorch pickles: it says why they are not read and how to convert."""
    pickles = sorted(path.name for pattern in PICKLE_PATTERNS for path in directory.glob(pattern))
    if pickles:
        raise CheckpointError(
            f"{directory} holds PyTorch pickles ({', '.join(pickles)}), which jaxmodels does not read: loading a "
            f"pickle runs the code inside it. Get the release's model.safetensors instead, or {TO_SAFETENSORS}"
        )


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor of `directory`'s safetensors files by name, as float32 (integer tensors as they are)."""
    tensors: dict[str, np.ndarray] = {}
    for path in weight_files(directory):
        tensors.update(read_safetensors(path))
    return tensors


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of one safetensors file, floats as float32; CheckpointError naming the file if it is damaged.

    `safe_open` validates the file (its header, and that every tensor lies inside it); each tensor is then read
    straight from the file into its own array, so reading holds about the file's size in memory, never a mapped
    copy of the file besides (transformers' float16 and bfloat16 files are widened one tensor at a time)."""
    try:
        with safe_open(path, framework="numpy") as file:
            names = list(file.keys())
            others = {name: file.get_tensor(name) for name in names if _dtype(file, name) not in FLOAT_DTYPES}
        with path.open("rb") as file:
            (header_size,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(header_size))
            return {name: others[name] if name in others else _read_float(file, 8 + header_size, header[name])
                    for name in names}  # fmt: skip
    except (SafetensorError, OSError, ValueError, struct.error) as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_line(error)}); it is truncated or damaged: "
            "download it again"
        ) from None


def _dtype(file: Any, name: str) -> str:
    return file.get_slice(name).get_dtype()


def _read_float(file: BinaryIO, data_start: int, entry: dict[str, Any]) -> np.ndarray:
    """One floating-point tensor of a validated header entry, as float32. bfloat16, which numpy lacks, is the
    top half of a float32: its 16 bits are shifted into place."""
    start, end = entry["data_offsets"]
    file.seek(data_start + start)
    stored = FLOAT_DTYPES[entry["dtype"]]
    values = np.fromfile(file, dtype=stored, count=(end - start) // np.dtype(stored).itemsize)
    if entry["dtype"] == "BF16":
        values = (values.astype(np.uint32) << 16).view(np.float32)
    return values.astype(np.float32, copy=False).reshape(entry["shape"])


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes `tensors` (contiguous copies where needed) as one safetensors file."""
    save_file({name: np.ascontiguousarray(tensor) for name, tensor in tensors.items()}, path, metadata=metadata)
