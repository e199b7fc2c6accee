"""The sweep worker: runs trials until the study holds exactly N finished ones (COMPLETE or PRUNED).

    report = jm.sweep("sweeps/lr", "experiments/mnist1d_cnn.py", "experiments/mnist1d_cnn_space.json",
                      num_trials=20)   # `jaxmodels sweep`; again with only the workdir to go on after a stop

Each trial is an ordinary workdir, `<sweep dir>/trial_K`, trained by `jm.train` with the trial's values set on the
experiment's config, and pruned through the loop (jaxmodels.sweeps.pruning). Its objective value is the BEST
value of the metric at its evaluations (in the sweep's direction), as `jaxmodels compare` reads it.

Exactly N, with any number of workers and restarts: a worker starts a trial only while fewer than N trials are
finished, running or queued; and since two workers may still ask at once, a trial that finds N such trials
numbered before it steps aside (it is marked FAIL before it trains). A trial whose worker stopped resumes from
its checkpoint: a SIGTERM or Ctrl-C ends the trial's run with a checkpoint (the loop raises `Preempted`) and
the trial is queued again with its values; a worker killed outright stops beating, and once its trial is
silent for four heartbeats another worker (or the restarted one) fails it and Optuna queues it again. The queued
copy keeps the original's workdir (user attribute `workdir`), so its run resumes there. A worker with no trial
left to start waits for the running ones (taking over any whose worker dies), so it returns with the sweep done.
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ml_collections
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize beats with; no public name
from optuna.trial import TrialState

from jaxmodels import config as config_lib
from jaxmodels import run
from jaxmodels.compare import MODES, compare_runs, default_mode
from jaxmodels.errors import ConfigError, JaxmodelsError
from jaxmodels.files import make_writable_dir, removed_if_failed
from jaxmodels.preemption import Preempted
from jaxmodels.sweeps import report as report_lib
from jaxmodels.sweeps import settings as settings_lib
from jaxmodels.sweeps.pruning import PRUNERS, TrialPruning, make_pruner
from jaxmodels.sweeps.settings import SweepSettings
from jaxmodels.sweeps.space import check_space, load_space, suggest, trial_config

SAMPLERS = ("tpe", "random")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ALIVE = (*FINISHED, TrialState.RUNNING, TrialState.WAITING)
MAX_FAILURES = 3  # trials failing in a row before this worker gives up: the experiment itself does not run
HEARTBEAT_SECONDS = 30


def sweep(
    workdir: str | Path,
    config: str | Path | ml_collections.ConfigDict | None = None,
    space: str | Path | dict[str, Any] | None = None,
    *,
    num_trials: int | None = None,
    overrides: Iterable[str] = (),
    metric: str | None = None,
    mode: str | None = None,
    storage: str | None = None,
    sampler: str | None = None,
    pruner: str | optuna.pruners.BasePruner | None = None,
    heartbeat_interval: int = HEARTBEAT_SECONDS,
) -> report_lib.SweepReport:
    """Runs (or joins, or resumes) the sweep in `workdir` until its study holds `num_trials` finished trials,
    then writes and returns its report (jaxmodels.sweeps.report), exactly as `jaxmodels sweep`.

    A new sweep needs `config` (an experiment file, with `overrides` applied to every trial, or a ConfigDict),
    `space` (a .json/.yaml space file or its dict) and `num_trials`. Once recorded in `workdir/sweep.json`, the
    workdir alone resumes it; given again, they must match (a changed experiment or space is refused). `metric`
    (default test/accuracy) in `mode` (default: min for a loss, else max) ranks the trials; `storage` is an Optuna
    RDB URL (default: SQLite in the workdir); `sampler` tpe (default) or random, seeded from the config's seed
    and the trial's number; `pruner` median (default), halving, none or an Optuna pruner.
    SIGTERM or Ctrl-C during a trial saves its checkpoint and raises `Preempted`; calling again resumes it.
    """
    sweep_dir = Path(workdir)
    pruner_name = pruner if isinstance(pruner, str) or pruner is None else type(pruner).__name__
    settings = _settings(sweep_dir, config, space, num_trials, overrides, metric, mode, storage, sampler, pruner_name)
    if not (isinstance(heartbeat_interval, int) and heartbeat_interval > 0):
        raise ConfigError(f"the heartbeat interval must be a positive number of seconds, got {heartbeat_interval!r}")
    if isinstance(pruner, optuna.pruners.BasePruner):
        pruner_object = pruner
    elif settings.pruner in PRUNERS:
        pruner_object = make_pruner(settings.pruner)
    else:
        raise ConfigError(
            f"this sweep prunes with a {settings.pruner} object; pass it again (pruner=...) or choose one of "
            f"{', '.join(PRUNERS)}"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead of Optuna's
    with removed_if_failed(sweep_dir):  # a storage that cannot be opened leaves no empty sweep dir
        make_writable_dir(sweep_dir, "sweep directory", "--workdir")
        with _optuna_quiet():
            study = settings_lib.open_study(sweep_dir, settings, heartbeat_interval)
        settings_lib.record_in_study(study, settings)
    settings_lib.write_settings(sweep_dir, settings)
    study.pruner = pruner_object
    _work(study, sweep_dir, settings, settings.base_config(), poll_seconds=heartbeat_interval)
    return report_lib.write_report(sweep_dir)


def _settings(
    sweep_dir: Path,
    config: str | Path | ml_collections.ConfigDict | None,
    space: str | Path | dict[str, Any] | None,
    num_trials: int | None,
    overrides: Iterable[str],
    metric: str | None,
    mode: str | None,
    storage: str | None,
    sampler: str | None,
    pruner: str | None,
) -> SweepSettings:
    """This invocation's settings: those given, the rest from sweep.json; checked against sweep.json."""
    recorded = settings_lib.read_settings(sweep_dir)
    overrides = list(overrides)
    if config is None and space is None:
        if recorded is None:
            raise ConfigError(
                f"{str(sweep_dir)!r} holds no sweep (no {settings_lib.SETTINGS_FILE}); start one with --config, "
                "--space and --trials"
            )
        if overrides:
            raise ConfigError("--config.key=value overrides belong to a new sweep, with --config and --space")
        config_file, base, space_dict = recorded.config_file, recorded.config, recorded.space
    elif config is None or space is None:
        raise ConfigError("a sweep needs both --config (the experiment) and --space (the search space file)")
    else:
        if not isinstance(config, str | Path | ml_collections.ConfigDict):
            raise TypeError(
                f"jm.sweep expects an experiment file or a config (jm.load_config(path)) as `config`, got a "
                f"{type(config).__name__}"
            )
        config_file = None if isinstance(config, ml_collections.ConfigDict) else str(config)
        loaded = run.load_config(config, overrides) if config_file else config_lib.apply_overrides(config, overrides)
        space_dict = check_space(space, loaded) if isinstance(space, dict) else load_space(space, loaded)
        base = json.loads(config_lib.to_json(loaded))
    if num_trials is None and recorded is None:
        raise ConfigError("a new sweep needs its number of trials: --trials N")
    metric = metric or (recorded.metric if recorded else "test/accuracy")
    settings = SweepSettings(
        config=base,
        space=space_dict,
        metric=metric,
        mode=mode or (recorded.mode if recorded and metric == recorded.metric else default_mode(metric)),
        num_trials=num_trials if num_trials is not None else recorded.num_trials,
        storage=storage if storage is not None else (recorded.storage if recorded else None),
        sampler=sampler or (recorded.sampler if recorded else "tpe"),
        pruner=pruner or (recorded.pruner if recorded else "median"),
        config_file=config_file or (recorded.config_file if recorded else None),
    )
    _check_choices(settings)
    if recorded is not None:
        settings_lib.check_same_sweep(recorded.to_json(), settings, str(sweep_dir / settings_lib.SETTINGS_FILE))
    return settings


def _check_choices(settings: SweepSettings) -> None:
    if not (isinstance(settings.num_trials, int) and settings.num_trials > 0):
        raise ConfigError(f"the number of trials must be a positive integer, got {settings.num_trials!r} (--trials)")
    for name, value, choices in (("mode", settings.mode, MODES), ("sampler", settings.sampler, SAMPLERS)):
        if value not in choices:
            raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)} (--{name})")


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler called `name`, seeded with `seed`. TPE lies constantly about running trials, so that workers
    asking at once do not draw the same point."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with _optuna_quiet():
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _work(
    study: optuna.Study, sweep_dir: Path, settings: SweepSettings, base: ml_collections.ConfigDict, poll_seconds: int
) -> None:
    """Starts, resumes or waits for trials until the study holds `settings.num_trials` finished ones."""
    failures, last_note = 0, ""
    while True:
        with _optuna_quiet():
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed and queued again
        trials = study.get_trials(deepcopy=False)
        counts = collections.Counter(trial.state for trial in trials)
        finished = sum(counts[state] for state in FINISHED)
        if finished >= settings.num_trials:
            return
        if not counts[TrialState.WAITING] and finished + counts[TrialState.RUNNING] >= settings.num_trials:
            note = (
                f"{finished} of {settings.num_trials} trials finished; waiting for {counts[TrialState.RUNNING]} running"
            )
            if note != last_note:
                _log(note + " (a trial whose worker died is taken over once it misses four heartbeats)")
                last_note = note
            time.sleep(poll_seconds)
            continue
        last_note = ""
        study.sampler = make_sampler(settings.sampler, base.seed + len(trials))
        with _optuna_quiet():
            trial = study.ask()
        if _is_surplus(study, trial, settings.num_trials):
            study.tell(trial, state=TrialState.FAIL)  # asked at the same time as another worker; that one runs
            continue
        state = _run_trial(study, trial, sweep_dir, settings, base)
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= MAX_FAILURES:
            raise JaxmodelsError(
                f"{failures} trials in a row failed (the last: {_frozen(study, trial.number).user_attrs['error']}); "
                "fix the experiment or the space, then run the sweep again"
            )


def _is_surplus(study: optuna.Study, trial: optuna.Trial, num_trials: int) -> bool:
    """Whether `num_trials` trials numbered before `trial` are finished, running or queued (trial numbers are
    given out in order, so of two workers asking at once exactly the later one steps aside)."""
    ahead = [other for other in study.get_trials(deepcopy=False) if other.number < trial.number]
    return sum(other.state in ALIVE for other in ahead) >= num_trials


def _run_trial(
    study: optuna.Study, trial: optuna.Trial, sweep_dir: Path, settings: SweepSettings, base: ml_collections.ConfigDict
) -> TrialState:
    """Trains one trial in its workdir (its original's, for a retried trial) and tells the study how it ended."""
    asked = _frozen(study, trial.number)
    name = asked.user_attrs.get("workdir", f"trial_{trial.number}")
    trial.set_user_attr("workdir", name)
    params = suggest(trial, settings.space)
    original = asked.system_attrs.get("failed_trial")  # set by Optuna's retry callback on a queued copy
    again = f", taking up trial {original}" if original is not None else ""
    _log(f"trial {trial.number} ({name}{again}): " + ", ".join(f"{key}={value!r}" for key, value in params.items()))
    pruning = TrialPruning(trial, settings.metric, asked.intermediate_values)
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):
            run.train(trial_config(params, base), sweep_dir / name, stoppers=[pruning])
        value = None if pruning.should_stop else _objective(sweep_dir / name, settings)
    except (Preempted, KeyboardInterrupt):
        study.tell(trial, state=TrialState.FAIL)
        _queue_again(study, trial.number)  # the same values, in the same workdir: the run resumes
        raise
    except JaxmodelsError as error:
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=TrialState.FAIL)
        _log(f"trial {trial.number} ({name}) failed: {error}")
        return TrialState.FAIL
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    if pruning.should_stop:
        study.tell(trial, state=TrialState.PRUNED)
        _log(f"{pruning.reason()} ({name})")
        return TrialState.PRUNED
    study.tell(trial, value)
    best = study.best_trial
    _log(
        f"trial {trial.number} ({name}) complete: {settings.metric} {value:.4g} (best so far {best.value:.4g}, "
        f"{best.user_attrs['workdir']})"
    )
    return TrialState.COMPLETE


def _objective(workdir: Path, settings: SweepSettings) -> float:
    """The trial's best value of the metric at its evaluations (in the sweep's direction)."""
    best = compare_runs([workdir], settings.metric, settings.mode).rows[0].best
    if best is None:
        raise JaxmodelsError(f"{settings.metric} was never finite in {workdir}: the run diverged")
    return best


def _queue_again(study: optuna.Study, number: int) -> None:
    """Queues a copy of the stopped trial `number` (values, workdir, reported values), as a stale one is."""
    with _optuna_quiet():
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)
        retry(study, _frozen(study, number))


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Silences Optuna's warnings that heartbeats, retries and the constant liar are experimental features, and
    that heartbeats are meant for `Study.optimize` (this worker beats around each trial itself, as it does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def _log(message: str) -> None:
    print(f"jaxmodels sweep: {message}", file=sys.stderr, flush=True)
