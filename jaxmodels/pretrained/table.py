"""A foreign weight layout as a table: rows "their tensors <-> our parameters, and the reshape between them".

A row names one or more tensors of the foreign file (Hugging Face or torchvision key names) and one or more
paths of jaxmodels' variables ('params/block_0/mlp/fc/kernel', 'batch_stats/bn_init/mean'), with two functions
that convert between them; import runs a table forwards and export runs the same table backwards, so the two
cannot drift apart. `to_variables` checks that every tensor of the file is used exactly once (or is one the
architecture declares as ignorable, such as a causal-mask buffer) and that every converted array has the shape
the model built from the config expects, naming the tensor when not.

Tensors in, tensors out: the files are read elsewhere (weights_files.py), the model is built elsewhere.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from jaxmodels.errors import CheckpointError

Arrays = tuple[np.ndarray, ...]
Convert = Callable[..., Arrays]


@dataclasses.dataclass(frozen=True)
class Row:
    """`theirs` (foreign tensor names) <-> `ours` (variable paths): `to_ours(*theirs) -> ours` and back."""

    theirs: tuple[str, ...]
    ours: tuple[str, ...]
    to_ours: Convert
    to_theirs: Convert


@dataclasses.dataclass(frozen=True)
class Reshape:
    """A one-to-one conversion: `forward` their array -> ours, `backward` ours -> theirs."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray], np.ndarray]

    def then(self, other: Reshape) -> Reshape:
        return Reshape(lambda a: other.forward(self.forward(a)), lambda a: self.backward(other.backward(a)))


SAME = Reshape(lambda a: a, lambda a: a)
TRANSPOSE = Reshape(lambda a: a.T, lambda a: a.T)  # PyTorch Linear (out, in) <-> Flax Dense (in, out)
# PyTorch convolution (out, in, height, width) <-> Flax (height, width, in, out)
CONV = Reshape(lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1))


def split_last(num_heads: int) -> Reshape:
    """(..., heads * head_dim) <-> (..., heads, head_dim): the query, key and value projections' outputs."""
    return Reshape(lambda a: a.reshape(*a.shape[:-1], num_heads, -1), lambda a: a.reshape(*a.shape[:-2], -1))


def split_first(num_heads: int) -> Reshape:
    """(heads * head_dim, out) <-> (heads, head_dim, out): the attention output projection's inputs."""
    return Reshape(lambda a: a.reshape(num_heads, -1, *a.shape[1:]), lambda a: a.reshape(-1, *a.shape[2:]))


def one(theirs: str, ours: str, reshape: Reshape = SAME) -> Row:
    """A row for one tensor and one parameter."""
    return Row((theirs,), (ours,), lambda a: (reshape.forward(a),), lambda a: (reshape.backward(a),))


def dense(theirs: str, ours: str, kernel: Reshape = TRANSPOSE, bias: Reshape = SAME) -> list[Row]:
    """A PyTorch Linear `theirs.weight`/`theirs.bias` <-> a Flax Dense `ours/kernel`/`ours/bias`."""
    return [one(f"{theirs}.weight", f"{ours}/kernel", kernel), one(f"{theirs}.bias", f"{ours}/bias", bias)]


def layer_norm(theirs: str, ours: str) -> list[Row]:
    """A LayerNorm's `weight`/`bias` <-> Flax's `scale`/`bias`."""
    return [one(f"{theirs}.weight", f"{ours}/scale"), one(f"{theirs}.bias", f"{ours}/bias")]


def torch_attention(projections: str, output: str, ours: str, num_heads: int) -> list[Row]:
    """PyTorch Linear attention layers (`projections.query`, `.key`, `.value` and `output`, as BERT and ViT
    write them) <-> a jaxmodels `MultiHeadAttention` at `ours`, its projections split into heads."""
    into_heads = TRANSPOSE.then(split_last(num_heads))
    rows = [
        row
        for name in ("query", "key", "value")
        for row in dense(f"{projections}.{name}", f"{ours}/{name}", into_heads, split_last(num_heads))
    ]
    return rows + dense(output, f"{ours}/out", TRANSPOSE.then(split_first(num_heads)))


def expand(rows: Iterable[Row], **values: int) -> list[Row]:
    """The rows with `{layer}` (and any other field) in their names formatted by `values`."""
    return [
        dataclasses.replace(
            row,
            theirs=tuple(name.format(**values) for name in row.theirs),
            ours=tuple(path.format(**values) for path in row.ours),
        )
        for row in rows
    ]


def check_table(rows: Sequence[Row]) -> None:
    """A bug in a table, not a user error: a tensor or a parameter named by two rows."""
    for side in ("theirs", "ours"):
        names = [name for row in rows for name in getattr(row, side)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"conversion table names {side} {repeated} more than once")


def to_variables(
    rows: Sequence[Row],
    tensors: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    *,
    ignorable: Sequence[str] = (),
    described_as: str,
) -> dict[str, np.ndarray]:
    """Runs the table forwards: {our path: float32 array} for every path of `expected` (path -> shape).

    `ignorable` are regular expressions of tensors the file may hold and the model does not use (buffers, tied
    copies, heads it lacks). `described_as` says where the sizes came from ('config.json (n_embd=768, ...)').
    CheckpointError: a tensor the table needs is missing, one it does not know is present, or a shape differs.
    """
    check_table(rows)
    needed = {name for row in rows for name in row.theirs}
    missing = sorted(needed - set(tensors))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(
            f"tensor {missing[0]!r}{more} is missing from the weights, which {described_as} needs; "
            "the files do not belong together: download the release again"
        )
    unknown = sorted(name for name in set(tensors) - needed if not any(re.fullmatch(p, name) for p in ignorable))
    if unknown:
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise CheckpointError(
            f"tensor {unknown[0]!r}{more} in the weights has no place in the model that {described_as} describes; "
            "the files do not belong together: download the release again"
        )
    variables: dict[str, np.ndarray] = {}
    for row in rows:
        theirs = [tensors[name] for name in row.theirs]
        try:
            ours = row.to_ours(*theirs)
        except ValueError:  # a reshape that the tensor's size does not allow
            ours = None
        if ours is None or any(array.shape != expected[path] for array, path in zip(ours, row.ours, strict=True)):
            _raise_shape_error(row, theirs, expected, described_as)
        for array, path in zip(ours, row.ours, strict=True):
            variables[path] = np.asarray(array, dtype=np.float32)
    return variables


def _raise_shape_error(
    row: Row, theirs: list[np.ndarray], expected: Mapping[str, tuple[int, ...]], described_as: str
) -> None:
    wanted = row.to_theirs(*(np.broadcast_to(np.float32(0), expected[path]) for path in row.ours))
    for name, array, shape in zip(row.theirs, theirs, wanted, strict=True):
        if array.shape != shape.shape:
            raise CheckpointError(
                f"tensor {name!r} has shape {tuple(array.shape)}, but {described_as} needs "
                f"{tuple(shape.shape)}; the weights and config.json disagree: download the release again"
            )
    raise CheckpointError(f"tensors {list(row.theirs)} do not fit {list(row.ours)}; the weights are malformed")


def to_tensors(rows: Sequence[Row], variables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs the table backwards: {their name: float32 array} from {our path: array}.

    Every path the table names must be present; paths it does not name are a bug in the table (ValueError).
    """
    check_table(rows)
    unused = sorted(set(variables) - {path for row in rows for path in row.ours})
    if unused:
        raise ValueError(f"conversion table leaves parameters {unused} out")
    tensors: dict[str, np.ndarray] = {}
    for row in rows:
        arrays = row.to_theirs(*(np.asarray(variables[path], dtype=np.float32) for path in row.ours))
        tensors.update(zip(row.theirs, arrays, strict=True))
    return tensors
