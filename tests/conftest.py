"""Shared fixtures: one MNIST-1D TFDS data dir per test session (generated once, ~6 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jaxmodels import config as config_lib
from jaxmodels.data import sources

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TFDS data dir holding the prepared mnist1d dataset; also exported as $TFDS_DATA_DIR."""
    path = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    sources.open_dataset("mnist1d", path)
    os.environ["TFDS_DATA_DIR"] = path
    return path


def small_config_factory(data_dir: str):
    """make(*overrides): the default CNN experiment, shortened for tests; callers change what they test."""

    def make(*overrides: str):
        config = config_lib.load_config_file(EXPERIMENTS / "mnist1d_cnn.py")
        base = [
            f"--config.data.data_dir={data_dir}",
            "--config.train.num_steps=60",
            "--config.train.eval_every=30",
            "--config.train.log_every=10",
            "--config.train.checkpoint_every=20",
            "--config.train.progress_bar=False",
        ]
        return config_lib.apply_overrides(config, [*base, *overrides])

    return make


@pytest.fixture
def small_config(data_dir: str):
    """The default CNN experiment, shortened for tests; callers change what they test."""
    return small_config_factory(data_dir)
