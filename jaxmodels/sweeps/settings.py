"""What a sweep is, recorded in `<sweep dir>/sweep.json` and in its Optuna study, and where the study is stored.

A sweep is its experiment's resolved config, its search space, its metric and direction, and its storage. They
are written once, by the first worker, into sweep.json (so `--report` and a restart need only `--workdir`) and
into the study's user attributes (so workers on other machines, sharing only the database, see them too). A
worker whose settings differ from either record is refused with the keys that differ: one study never mixes
two spaces or two experiments. How the sweep goes on (the number of trials, the sampler, the pruner) may change
from one invocation to the next; sweep.json keeps the latest.

Storage: by default an SQLite file in the sweep dir (`study.db`), safe for several workers on one machine's
disk; any Optuna RDB URL otherwise (PostgreSQL for workers on many machines). Both keep Optuna's heartbeats,
with which a trial whose worker died is detected and handed to another worker (jaxmodels.sweeps.runner).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import ml_collections
import optuna
import sqlalchemy

from jaxmodels import config as config_lib
from jaxmodels.errors import ConfigError
from jaxmodels.files import read_json_object

SETTINGS_FILE = "sweep.json"
DEFAULT_DATABASE = "study.db"
STUDY_ATTRIBUTE = "jaxmodels_sweep"
# The settings that define the sweep: a worker must agree on every one of them.
DEFINING = ("config", "space", "metric", "mode", "storage")


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """A sweep's settings, as sweep.json holds them."""

    config: dict[str, Any]  # the experiment's resolved config (with the command's overrides), as JSON
    space: dict[str, dict[str, Any]]  # normalised (jaxmodels.sweeps.space)
    metric: str
    mode: str  # 'max' or 'min'
    num_trials: int
    storage: str | None  # None: the SQLite file study.db in the sweep dir
    sampler: str
    pruner: str
    config_file: str | None = None  # where the config came from, for the reader

    def base_config(self) -> ml_collections.ConfigDict:
        """The experiment's config, rebuilt on the schema and validated."""
        return config_lib.apply_overrides(config_lib.config_from_dict(self.config), [])

    def storage_url(self, sweep_dir: Path) -> str:
        return self.storage or f"sqlite:///{(sweep_dir / DEFAULT_DATABASE).resolve()}"

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples become lists, as read back


def read_settings(sweep_dir: Path) -> SweepSettings | None:
    """The settings recorded in `sweep_dir` (None if it holds no sweep.json)."""
    path = sweep_dir / SETTINGS_FILE
    if not path.is_file():
        return None
    values = read_json_object(path, ConfigError)
    try:
        return SweepSettings(**values)
    except TypeError as error:
        raise ConfigError(f"{path} is not a sweep's settings file ({error}); was it edited?") from None


def write_settings(sweep_dir: Path, settings: SweepSettings) -> None:
    """Writes sweep.json atomically (a reader never sees half a file)."""
    path = sweep_dir / SETTINGS_FILE
    temporary = path.with_name(f".{SETTINGS_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(settings.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def check_same_sweep(recorded: dict[str, Any], wanted: SweepSettings, where: str) -> None:
    """ConfigError if `wanted` defines another sweep than the settings `recorded` in `where`, naming what differs."""
    current = wanted.to_json()
    differences = []
    for key in DEFINING:
        if key == "config":
            differences += [f"config {change}" for change in config_lib.config_differences(recorded[key], current[key])]
        elif recorded.get(key) != current[key]:
            differences.append(f"{key}: {recorded.get(key)!r} -> {current[key]!r}")
    if differences:
        shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
        raise ConfigError(
            f"this is not the sweep recorded in {where}: {shown}. Nothing was run. A changed experiment or search "
            "space is a new sweep: give it a new --workdir (or run `jaxmodels sweep --workdir DIR` to go on as it was)"
        )


def open_study(sweep_dir: Path, settings: SweepSettings, heartbeat_interval: int) -> optuna.Study:
    """The sweep's Optuna study (created on first use), its storage beating every `heartbeat_interval` seconds;
    a trial silent for four beats is failed and queued again with its values (the runner resumes it)."""
    url = settings.storage_url(sweep_dir)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # wait out other writers
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3, inherit_intermediate_values=True)
    direction = "maximize" if settings.mode == "max" else "minimize"
    for attempt in range(3):  # workers started at once race to create the tables; the losers try again
        try:
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=4 * heartbeat_interval,
                heartbeat_stale_trial_callback=retry,
            )
            return optuna.create_study(
                storage=storage, study_name=sweep_dir.resolve().name, direction=direction, load_if_exists=True
            )
        except ModuleNotFoundError as error:
            raise ConfigError(
                f"the storage URL {url!r} needs the database driver {error.name!r}, which is not installed: pip "
                "install it, or name an installed driver in the URL (e.g. postgresql+psycopg2://...)"
            ) from None
        except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as error:
            failure = error  # a server that does not answer yet, or a race with another worker: try again
            time.sleep(1.0 + attempt)
        except (sqlalchemy.exc.ArgumentError, ValueError) as error:
            failure = error
            break
    raise ConfigError(
        f"cannot open the sweep's storage {url!r}: {' '.join(str(failure).split())[:300]}; check the --storage URL"
    )


def record_in_study(study: optuna.Study, settings: SweepSettings) -> None:
    """Checks `settings` against those the study already holds (from any machine), or records them there."""
    recorded = study.user_attrs.get(STUDY_ATTRIBUTE)
    if recorded is None:
        study.set_user_attr(STUDY_ATTRIBUTE, settings.to_json())
    else:
        check_same_sweep(recorded, settings, f"the study {study.study_name!r} of the storage")
