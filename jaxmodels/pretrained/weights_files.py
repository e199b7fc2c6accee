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
FLOAT_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


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
    """The tensors of one safetensors file, floats as float32; CheckpointError naming the file if it is damaged."""
    try:
        with safe_open(path, framework="numpy") as file:
            dtypes = {name: file.get_slice(name).get_dtype() for name in file.keys()}  # noqa: SIM118 (not a dict)
            tensors = {name: file.get_tensor(name) for name, dtype in dtypes.items() if dtype != "BF16"}
        if "BF16" in dtypes.values():
            tensors.update(_read_bfloat16(path, [name for name, dtype in dtypes.items() if dtype == "BF16"]))
    except (SafetensorError, OSError, ValueError, struct.error) as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({first_line(error)}); it is truncated or damaged: "
            "download it again"
        ) from None
    return {name: _as_float32(tensor) for name, tensor in tensors.items()}


def _as_float32(tensor: np.ndarray) -> np.ndarray:
    return tensor.astype(np.float32, copy=False) if np.issubdtype(tensor.dtype, np.floating) else tensor


def _read_bfloat16(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """bfloat16 tensors (numpy has no such dtype): each 16-bit value is the top half of a float32.

    The file's header (already validated by `safe_open`) gives each tensor's byte range after the header."""
    with path.open("rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
        data = np.memmap(file, dtype=np.uint8, mode="r", offset=8 + header_size)
        tensors = {}
        for name in names:
            start, end = header[name]["data_offsets"]
            halves = np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << 16
            tensors[name] = halves.view(np.float32).reshape(header[name]["shape"])
        return tensors


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Writes `tensors` (contiguous copies where needed) as one safetensors file."""
    save_file({name: np.ascontiguousarray(tensor) for name, tensor in tensors.items()}, path, metadata=metadata)
