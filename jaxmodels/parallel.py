"""Parallel training: devices, the device mesh, the sharding strategies and the multi-host bootstrap.

`config.parallel.strategy` picks one of four strategies, resolved here and nowhere else:
- pmap: the classic data parallelism of `jax.pmap`: the TrainState is replicated on every device, the batch
  is split along a leading device axis, gradients and metrics are averaged (summed) with collectives over
  the axis 'data', and BatchNorm statistics with them (the models' `bn_axis_name`).
- dp: `jax.jit` over a `jax.sharding.Mesh` with axes ('data', 'model'): parameters replicated, the batch
  sharded along 'data'; XLA (GSPMD) inserts the gradient all-reduce.
- fsdp: dp plus fully sharded parameters and optimizer state (ZeRO-3, Rajbhandari et al. 2020): every state
  leaf is split over 'data' along its largest dimension divisible by that axis; XLA gathers a layer's weights
  where they are used.
- tp: Megatron-style tensor parallelism (Shoeybi et al. 2019): attention heads and MLP hidden units are split
  over 'model', following the logical axis names that the model family declares for its parameters (its
  `logical_axes` in the model registry) and `LOGICAL_RULES`; the batch is split over 'data', so a mesh such
  as {data: 4, model: 2} is 2-D data x tensor parallelism.

A strategy places the train state and batches, wraps the loop's step in `jax.pmap` or `jax.jit` (state
donated, outputs pinned to the state's shardings, so no step waits for the host) and reads metrics back.
Multi-host: `initialize_distributed` starts JAX's multi-controller runtime before any device is touched.

Adding a strategy: subclass `Strategy` (or `MeshStrategy` with its own `leaf_spec`) and add it to
`STRATEGIES`; config validation and its error messages take their choices from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmodels.errors import ConfigError
from jaxmodels.preemption import disable_jax_preemption_service

DATA, MODEL = "data", "model"
# XLA runs the collectives of several CPU devices on a small shared thread pool: with many steps in flight, device
# threads block in the collectives of different steps, starve the pool and the run aborts in a rendezvous timeout
# (seen after ~2,500 un-synced steps of the MNIST-1D CNN on two CPU devices). Multi-device CPU runs therefore wait
# for every few steps to finish before dispatching more; accelerators keep their queue unbounded.
CPU_STEPS_IN_FLIGHT = 4
LogicalAxes = Callable[[tuple[str, ...]], "tuple[str, ...] | None"]  # parameter path -> its logical axis names
# Logical parameter axes -> mesh axes for tensor parallelism; unnamed or unlisted axes are not split.
LOGICAL_RULES: dict[str, str] = {"heads": MODEL, "mlp": MODEL}

# ---------------------------------------------------------------------------------------------------------------
# CPU devices
# ---------------------------------------------------------------------------------------------------------------


def split_host_cpu(config: ml_collections.ConfigDict) -> None:
    """Makes JAX's CPU backend `parallel.cpu_devices` devices, if JAX has not started yet (see `cpu_devices_of`).

    XLA runs one CPU device's step on its intra-op threads, and a small model's ops (a char GPT's 64x128
    matmuls) are too small to keep several cores busy. Split into n devices, with `parallel.strategy=dp` each
    device computes its share of the batch on its own thread, in parallel: 1.3-1.5x the steps/s of the char GPT
    on 2 cores (docs/benchmarks.md); the losses equal the one-device run's up to float summation order. It
    must happen before JAX starts its backends, so `build_experiment` calls it first. An explicit
    `--xla_force_host_platform_device_count` in XLA_FLAGS wins (the tests' 8 fake devices).
    """
    if config.parallel.cpu_devices > 1 and not _cpu_count_forced():
        with contextlib.suppress(RuntimeError):  # JAX runs already: `cpu_devices_of` makes do with its devices
            jax.config.update("jax_num_cpu_devices", config.parallel.cpu_devices)


def cpu_devices_of(config: ml_collections.ConfigDict, devices: list[jax.Device]) -> list[jax.Device]:
    """The CPU devices a single-process run uses: the first `parallel.cpu_devices` of `devices`.

    A process keeps the device count JAX started with, so a run after one that split the CPU (two runs in one
    notebook) still uses its own count; one that wants more than JAX has (JAX started before the run, e.g. a
    notebook cell used it) says so on stderr and uses what there is. With the count forced in XLA_FLAGS, every
    device is used, as on GPU and TPU, where this is not called.
    """
    wanted = config.parallel.cpu_devices
    if _cpu_count_forced():
        return devices
    if len(devices) < wanted:
        print(
            f"jaxmodels: note: parallel.cpu_devices={wanted} cannot apply, JAX already runs with {len(devices)} CPU "
            "device(s) in this process; set it before the first JAX operation (a fresh process or kernel) to "
            f"use it. Continuing on {len(devices)}.",
            file=sys.stderr,
            flush=True,
        )
    return devices[:wanted]


def _cpu_count_forced() -> bool:
    return "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")


# ---------------------------------------------------------------------------------------------------------------
# Multi-host bootstrap
# ---------------------------------------------------------------------------------------------------------------


def initialize_distributed(config: ml_collections.ConfigDict) -> bool:
    """Starts `jax.distributed` if the config or the environment asks for several processes; True if it did.

    Explicit settings (`parallel.coordinator_address`, `num_processes`, `process_id`) win; blank ones are left to
    JAX, which reads them from SLURM, Open MPI, Kubernetes or Cloud TPU (`parallel.distributed=True` alone is
    enough on those). If a peer does not connect within `parallel.initialization_timeout` seconds, this process
    prints a one-line error and exits with status 2 instead of waiting forever.
    """
    cfg = config.parallel
    address = cfg.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
    if not (cfg.distributed or address or cfg.num_processes > 1):
        return False
    if jax.distributed.is_initialized():
        return True
    kwargs: dict[str, Any] = {
        "initialization_timeout": cfg.initialization_timeout + 5,  # our watchdog below speaks first
        "heartbeat_timeout_seconds": cfg.heartbeat_timeout,
    }
    if address:
        kwargs["coordinator_address"] = address
    if cfg.num_processes > 0:
        kwargs["num_processes"] = cfg.num_processes
    if cfg.process_id >= 0:
        kwargs["process_id"] = cfg.process_id
    connected = threading.Event()
    where = address or "the auto-detected coordinator"

    def watchdog() -> None:
        # jax.distributed aborts the whole process (a C++ CHECK) when a peer is missing; say why first.
        if not connected.wait(cfg.initialization_timeout):
            print(
                f"jaxmodels: error: not all {cfg.num_processes or 'expected'} processes connected to {where} within "
                f"parallel.initialization_timeout={cfg.initialization_timeout} s; start every process with the same "
                "coordinator address and process count (or raise the timeout)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(2)

    threading.Thread(target=watchdog, daemon=True, name="jaxmodels-distributed-watchdog").start()
    disable_jax_preemption_service()  # jaxmodels.preemption agrees on a stop step itself
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"cannot start jax.distributed ({error}); check parallel.coordinator_address") from None
    finally:
        connected.set()
    return True


# ---------------------------------------------------------------------------------------------------------------
# Devices and mesh
# ---------------------------------------------------------------------------------------------------------------


def select_devices(config: ml_collections.ConfigDict) -> list[jax.Device]:
    """The devices a run uses: all of them (a single CPU process: `parallel.cpu_devices` of them), or the first
    `parallel.num_devices` (single process only)."""
    devices = jax.devices()
    wanted = config.parallel.num_devices
    if wanted <= 0 and devices[0].platform == "cpu" and jax.process_count() == 1:
        return cpu_devices_of(config, devices)
    if wanted <= 0:
        return devices
    if wanted > len(devices):
        raise ConfigError(
            f"parallel.num_devices={wanted} but JAX sees {len(devices)} devices; set parallel.num_devices<="
            f"{len(devices)} (0 = all)"
        )
    if jax.process_count() > 1 and wanted != len(devices):
        raise ConfigError("parallel.num_devices must be 0 (all devices) in a multi-process run; set it to 0")
    return devices[:wanted]


def mesh_shape(config: ml_collections.ConfigDict, num_devices: int) -> dict[str, int]:
    """`parallel.mesh` with its -1 entry resolved; ConfigError if it does not tile `num_devices` exactly."""
    axes = {DATA: config.parallel.mesh.data, MODEL: config.parallel.mesh.model}
    unknown = [name for name, size in axes.items() if size == -1]
    if len(unknown) > 1:
        raise ConfigError("only one of parallel.mesh.data and parallel.mesh.model may be -1; set the other")
    for name, size in axes.items():
        if size == 0 or size < -1:
            raise ConfigError(f"parallel.mesh.{name}={size}; use a positive size or -1 (all remaining devices)")
    known = math.prod(size for size in axes.values() if size != -1)
    if unknown:
        if num_devices % known:
            raise ConfigError(
                f"parallel.mesh {axes} does not divide the {num_devices} devices; choose sizes whose product divides "
                f"{num_devices}"
            )
        axes[unknown[0]] = num_devices // known
    elif known != num_devices:
        raise ConfigError(
            f"parallel.mesh {axes} has {known} devices but the run has {num_devices}; make the product "
            f"{num_devices} or set one axis to -1"
        )
    return axes


def make_mesh(config: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The ('data', 'model') mesh of `parallel.mesh` over `devices` (default: `select_devices(config)`)."""
    devices = list(devices) if devices is not None else select_devices(config)
    shape = mesh_shape(config, len(devices))
    auto = (jax.sharding.AxisType.Auto,) * 2  # jax >= 0.7 defaults to Explicit axes; GSPMD wants Auto
    if len(devices) == len(jax.devices()):
        return jax.make_mesh((shape[DATA], shape[MODEL]), (DATA, MODEL), axis_types=auto)
    return Mesh(np.array(devices).reshape(shape[DATA], shape[MODEL]), (DATA, MODEL), axis_types=auto)


# ---------------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------------


# The state initialiser runs once per run, so its compile time is all it costs: XLA's CPU backend compiles it
# 1.2-3x faster with LLVM at optimisation level 1 than at its default (ResNet-20: 4.8 -> 1.5 s of its first step)
# and draws the same parameters, bit for bit (checked on every experiment; level 0 would change the last bit of
# some normal draws). Other backends keep their defaults.
_RUN_ONCE_CPU_OPTIONS = {"xla_backend_optimization_level": 1}


def run_once(function: Callable[..., Any], *args: Any, **jit_options: Any) -> Any:
    """`jax.jit(function, **jit_options)(*args)`, compiled for this one call: quickly, not for speed."""
    compiled = jax.jit(function, **jit_options).lower(*args)
    options = _RUN_ONCE_CPU_OPTIONS if jax.default_backend() == "cpu" else None
    return compiled.compile(compiler_options=options)(*args)


def make_strategy(config: ml_collections.ConfigDict, logical_axes: LogicalAxes | None = None) -> Strategy:
    """The strategy `config.parallel` asks for, with the batch sizes checked against its data axis.

    `logical_axes` is the model family's map from a parameter path to its logical axis names (tensor
    parallelism splits the axes `LOGICAL_RULES` names); families that declare none are replicated under tp.
    """
    name = config.parallel.strategy
    if name not in STRATEGIES:
        raise ConfigError(f"config key 'parallel.strategy' is {name!r}; choose one of {', '.join(STRATEGIES)}")
    strategy = STRATEGIES[name](config, logical_axes)
    _check_divisible(config, strategy.data_parallelism)
    return strategy


def _check_divisible(config: ml_collections.ConfigDict, data_parallelism: int) -> None:
    per_step = data_parallelism * config.train.accumulate_steps
    if config.data.batch_size % per_step:
        what = f"{data_parallelism} data-parallel devices" + (
            f" x {config.train.accumulate_steps} accumulation steps" if config.train.accumulate_steps > 1 else ""
        )
        raise ConfigError(
            f"data.batch_size={config.data.batch_size} is not divisible by the {what}; set data.batch_size to a "
            f"multiple of {per_step}"
        )
    if config.data.eval_batch_size % data_parallelism:
        raise ConfigError(
            f"data.eval_batch_size={config.data.eval_batch_size} is not divisible by the {data_parallelism} "
            f"data-parallel devices; set it to a multiple of {data_parallelism}"
        )


class Strategy:
    """How state, batches and steps are laid out on the devices. Subclasses: `PmapStrategy`, `MeshStrategy`."""

    name: str
    data_parallelism: int  # how many ways the batch is split
    num_parts: int = 1  # pmap: per-device slices a resident feed lays its permutation out in
    host_batches: bool = False  # a resident feed gathers each batch on the host (multi-process or one-CPU jit)
    first_call_reuses_compilation: bool = True  # a step's first call uses its `lower().compile()` (jit's cache)

    def model_overrides(self, model_cls: type) -> dict[str, Any]:
        """Model constructor arguments the strategy needs (pmap: BatchNorm's axis name)."""
        return {}

    def step_options(self) -> dict[str, Any]:
        """Keyword arguments for `train_step`/`eval_step` (pmap: the collective axis name)."""
        return {}

    def init_state(self, create: Callable[..., Any], *args: Any) -> Any:
        """Runs `create(*args)` (the TrainState initialiser) and places its result on the devices."""
        raise NotImplementedError

    def state_shardings(self, abstract_state: Any) -> Any:
        """The sharding of every leaf of a (placed, global) train state."""
        raise NotImplementedError

    def place_state(self, state: Any) -> Any:
        """A state made elsewhere (one copy, e.g. on one device) laid out for this strategy."""
        return jax.device_put(state, self.state_shardings(state))

    def compile_step(self, step: Callable[..., Any], state_shardings: Any) -> Callable[..., Any]:
        """`step(state, sums, *args) -> (state, sums)` compiled for this strategy, state and sums donated."""
        raise NotImplementedError

    def compile_eval(self, step: Callable[..., Any]) -> Callable[..., Any]:
        """`step(state, batch) -> metric sums` compiled for this strategy."""
        raise NotImplementedError

    def constrain_batch(self, batch: Any) -> Any:
        """Inside a compiled step: pins a batch gathered there to the data sharding."""
        return batch

    def place_batch(self, batch: dict[str, np.ndarray]) -> Any:
        """This process's rows of a batch (numpy) -> the global batch the compiled step takes (on a one-device
        mesh the numpy arrays themselves, which the step's dispatch copies to the device)."""
        raise NotImplementedError

    def put_replicated(self, tree: Any) -> Any:
        """A copy of `tree` on every device (resident datasets, metric sums)."""
        raise NotImplementedError

    def to_host(self, tree: Any) -> Any:
        """Replicated device values (metric sums) -> numpy copies, on every process.

        Copies, not views: on CPU `np.asarray` may share the device buffer, which the next step donates while an
        asynchronous checkpoint may still be reading these values.
        """
        return jax.tree.map(lambda x: np.array(x.addressable_data(0)), tree)

    def canonical_state(self, state: Any) -> Any:
        """The state as one logical copy: what is checkpointed and returned (pmap drops its device axis)."""
        return state

    def from_canonical(self, state: Any) -> Any:
        """Inverse of `canonical_state`: a restored state placed for this strategy."""
        return state

    @property
    def mesh_shape(self) -> dict[str, int]:
        """The device mesh as {axis: size}."""
        raise NotImplementedError

    @property
    def local_devices(self) -> list[jax.Device]:
        """The devices of this process that the strategy uses."""
        raise NotImplementedError

    @functools.cached_property
    def max_steps_in_flight(self) -> int | None:
        """How many dispatched train steps may be unfinished at once (None: no bound); see CPU_STEPS_IN_FLIGHT.
        Cached: `pace` asks at every step, and a strategy's devices do not change."""
        devices = self.local_devices
        return CPU_STEPS_IN_FLIGHT if len(devices) > 1 and devices[0].platform == "cpu" else None

    def pace(self, dispatched: int, outputs: Any) -> None:
        """Waits for `outputs` when `dispatched` (the count of steps or eval batches sent so far) reaches a
        multiple of `max_steps_in_flight`: the bound every dispatching loop keeps on several CPU devices."""
        in_flight = self.max_steps_in_flight
        if in_flight and dispatched % in_flight == 0:
            jax.block_until_ready(outputs)

    def abstract_placed_state(self, abstract_state: Any) -> Any:
        """ShapeDtypeStructs of the train state as the compiled step receives it (for ahead-of-time lowering)."""
        raise NotImplementedError

    def abstract_inputs(self, tree: Any) -> Any:
        """ShapeDtypeStructs of placed step inputs (batches, feed arrays, metric sums) for ahead-of-time lowering."""
        raise NotImplementedError

    def state_held_per_device(self, abstract_state: Any) -> Any:
        """ShapeDtypeStructs (with shardings where split) of what one device holds of the train state."""
        raise NotImplementedError


class PmapStrategy(Strategy):
    """`jax.pmap` with collectives over the axis 'data' (see the module docstring).

    Each process feeds and holds its own devices' slices. With several processes the mapped axis spans
    every device of the run (`devices=None`: JAX's multi-process pmap), so `pmean` averages across hosts;
    the state is checkpointed as one global, fully replicated array per leaf, as Orbax requires.
    """

    name = "pmap"
    first_call_reuses_compilation = False  # pmap's first call compiles again whatever was compiled ahead

    def __init__(self, config: ml_collections.ConfigDict, logical_axes: LogicalAxes | None = None):
        del logical_axes  # every device holds the whole model
        if config.parallel.mesh.model not in (1, -1):
            raise ConfigError("parallel.strategy=pmap has no model axis; set parallel.mesh.model=1 (or use tp)")
        devices = select_devices(config)
        self.devices = [d for d in devices if d.process_index == jax.process_index()]
        self.num_parts = len(self.devices)
        self.data_parallelism = len(devices)
        self._sharding = NamedSharding(Mesh(np.array(self.devices), (DATA,)), P(DATA))
        self._pmap_devices = None if jax.process_count() > 1 else self.devices  # multi-process: all devices

    def model_overrides(self, model_cls: type) -> dict[str, Any]:
        fields = {f.name for f in dataclasses.fields(model_cls)} if dataclasses.is_dataclass(model_cls) else set()
        return {"bn_axis_name": DATA} if "bn_axis_name" in fields else {}

    def step_options(self) -> dict[str, Any]:
        return {"axis_name": DATA}

    def init_state(self, create: Callable[..., Any], *args: Any) -> Any:
        return self.from_canonical(run_once(create, *args))

    def state_shardings(self, abstract_state: Any) -> Any:
        return jax.tree.map(lambda _: self._sharding, abstract_state)

    def compile_step(self, step: Callable[..., Any], state_shardings: Any) -> Callable[..., Any]:
        del state_shardings
        return jax.pmap(step, axis_name=DATA, devices=self._pmap_devices, donate_argnums=(0, 1))

    def compile_eval(self, step: Callable[..., Any]) -> Callable[..., Any]:
        return jax.pmap(step, axis_name=DATA, devices=self._pmap_devices)

    def place_batch(self, batch: dict[str, np.ndarray]) -> Any:
        def split(x: np.ndarray) -> jax.Array:
            return jax.device_put(np.reshape(x, (self.num_parts, -1, *np.shape(x)[1:])), self._sharding)

        return jax.tree.map(split, batch)

    def put_replicated(self, tree: Any) -> Any:
        def replicate(x: Any) -> jax.Array:
            local = x.addressable_data(0) if isinstance(x, jax.Array) and not x.is_fully_addressable else x
            return jax.device_put(jnp.stack([local] * self.num_parts), self._sharding)

        return jax.tree.map(replicate, tree)

    def to_host(self, tree: Any) -> Any:
        return jax.tree.map(lambda x: np.array(x.addressable_data(0))[0, ...], tree)

    def canonical_state(self, state: Any) -> Any:
        if jax.process_count() > 1:
            return jax.tree.map(_global_replica, state)
        return jax.tree.map(lambda x: x.addressable_data(0)[0], state)

    def place_state(self, state: Any) -> Any:
        return self.put_replicated(state)

    def from_canonical(self, state: Any) -> Any:
        return self.put_replicated(state)

    @property
    def mesh_shape(self) -> dict[str, int]:
        return {DATA: self.data_parallelism}

    @property
    def local_devices(self) -> list[jax.Device]:
        return self.devices

    def abstract_placed_state(self, abstract_state: Any) -> Any:
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct((self.num_parts, *x.shape), x.dtype), abstract_state)

    def abstract_inputs(self, tree: Any) -> Any:
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)

    def state_held_per_device(self, abstract_state: Any) -> Any:
        return abstract_state  # a whole replica on every device


def _global_replica(x: jax.Array) -> jax.Array:
    """A pmapped leaf (one replica per local device) -> one global array replicated over every device of the run."""
    replicas = [shard.data[0] for shard in sorted(x.addressable_shards, key=lambda shard: shard.device.id)]
    sharding = NamedSharding(Mesh(np.array(jax.devices()), (DATA,)), P())
    return jax.make_array_from_single_device_arrays(replicas[0].shape, sharding, replicas)


class MeshStrategy(Strategy):
    """`jax.jit` over a ('data', 'model') mesh with NamedShardings; subclasses say how state leaves are split.

    This base class is plain data parallelism: every state leaf replicated, the batch split along 'data'.
    """

    name = "dp"
    splits_model = False  # whether parallel.mesh.model may exceed 1

    def __init__(self, config: ml_collections.ConfigDict, logical_axes: LogicalAxes | None = None):
        mesh = make_mesh(config)
        if not self.splits_model and mesh.shape[MODEL] > 1:
            raise ConfigError(
                f"parallel.strategy={self.name} does not split the model; set parallel.mesh.model=1 or "
                "parallel.strategy=tp"
            )
        self.mesh, self.logical_axes = mesh, logical_axes
        self.data_parallelism = mesh.shape[DATA]
        # A resident feed gathers on the host where it must, each process holding only its rows of the batch, and
        # on one CPU device, whose memory is the host's: numpy's gather in the dispatching thread costs less than
        # XLA's gather kernel in the step (the MNIST-1D MLP's step 1.15-1.3x, the CNN's 1.04-1.06x).
        self.host_batches = jax.process_count() > 1 or (mesh.size == 1 and mesh.devices.flat[0].platform == "cpu")
        self.replicated = NamedSharding(mesh, P())
        self.batch_sharding = NamedSharding(mesh, P(DATA))

    def state_shardings(self, abstract_state: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: NamedSharding(self.mesh, self.leaf_spec(_names(path), leaf.shape)), abstract_state
        )

    def leaf_spec(self, path: tuple[str, ...], shape: tuple[int, ...]) -> P:
        """The PartitionSpec of one state leaf (a parameter, or an optimizer moment shaped like one)."""
        del path, shape
        return P()

    def init_state(self, create: Callable[..., Any], *args: Any) -> Any:
        # Created directly in its sharded layout: a model too big for one device is never whole anywhere.
        shardings = self.state_shardings(jax.eval_shape(create, *args))
        return run_once(create, *args, out_shardings=shardings)

    def compile_step(self, step: Callable[..., Any], state_shardings: Any) -> Callable[..., Any]:
        return jax.jit(step, out_shardings=(state_shardings, self.replicated), donate_argnums=(0, 1))

    def compile_eval(self, step: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(step, out_shardings=self.replicated)

    def constrain_batch(self, batch: Any) -> Any:
        return jax.lax.with_sharding_constraint(batch, self.batch_sharding)

    def place_batch(self, batch: dict[str, np.ndarray]) -> Any:
        if self.mesh.size == 1:  # the compiled step's C++ dispatch copies numpy in ~15x faster than device_put
            return batch
        if not self.host_batches:  # this process holds the whole batch: one transfer for all its arrays
            return jax.device_put(batch, self.batch_sharding)
        return jax.tree.map(lambda x: jax.make_array_from_process_local_data(self.batch_sharding, x), batch)

    def put_replicated(self, tree: Any) -> Any:
        return jax.device_put(tree, self.replicated)

    @property
    def mesh_shape(self) -> dict[str, int]:
        return dict(self.mesh.shape)

    @property
    def local_devices(self) -> list[jax.Device]:
        return [device for device in self.mesh.devices.flat if device.process_index == jax.process_index()]

    def abstract_placed_state(self, abstract_state: Any) -> Any:
        shardings = self.state_shardings(abstract_state)
        return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_state, shardings)

    def abstract_inputs(self, tree: Any) -> Any:
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=getattr(x, "sharding", None)), tree
        )

    def state_held_per_device(self, abstract_state: Any) -> Any:
        return self.abstract_placed_state(abstract_state)


class FullyShardedDataParallel(MeshStrategy):
    """ZeRO-3 (Rajbhandari et al. 2020): every state leaf split over 'data' along its largest divisible dimension."""

    name = "fsdp"

    def leaf_spec(self, path: tuple[str, ...], shape: tuple[int, ...]) -> P:
        return fsdp_spec(shape, self.mesh.shape[DATA])


class TensorParallel(MeshStrategy):
    """Megatron (Shoeybi et al. 2019): the model family's logical axes split over 'model' by `LOGICAL_RULES`."""

    name = "tp"
    splits_model = True

    def leaf_spec(self, path: tuple[str, ...], shape: tuple[int, ...]) -> P:
        names = self.logical_axes(path) if self.logical_axes is not None else None
        return tp_spec(path, names, shape, self.mesh.shape[MODEL])


# The strategies `parallel.strategy` chooses from; config validation lists these names.
STRATEGIES: dict[str, Callable[[ml_collections.ConfigDict, LogicalAxes | None], Strategy]] = {
    "pmap": PmapStrategy,
    "dp": MeshStrategy,
    "fsdp": FullyShardedDataParallel,
    "tp": TensorParallel,
}


def _names(path: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(getattr(key, "key", getattr(key, "name", key))) for key in path)


def fsdp_spec(shape: tuple[int, ...], data_size: int) -> P:
    """ZeRO-3: split the largest dimension divisible by the data axis; leaves with none stay replicated."""
    candidates = [(size, -axis) for axis, size in enumerate(shape) if size % data_size == 0 and size >= data_size]
    if data_size == 1 or not candidates:
        return P()
    axis = -max(candidates)[1]
    return P(*([None] * axis), DATA)


def tp_spec(path: tuple[str, ...], names: tuple[str, ...] | None, shape: tuple[int, ...], model_size: int) -> P:
    """Megatron: a parameter's logical axis `names` mapped through `LOGICAL_RULES`; unnamed leaves replicated."""
    if names is None or len(names) != len(shape):
        return P()
    spec = [LOGICAL_RULES.get(name) for name in names]
    for axis, (mesh_axis, size) in enumerate(zip(spec, shape, strict=True)):
        if mesh_axis and size % model_size:
            raise ConfigError(
                f"parameter {'/'.join(path)} has {size} {names[axis]} units, not divisible by parallel.mesh.model="
                f"{model_size}; choose a model axis that divides num_heads and the MLP width"
            )
    return P(*spec)
