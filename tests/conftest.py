from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from qcalo.data.geometry import ecal_3dgan
from qcalo.data.simulate import simulate
from qcalo.data.writer import write_showers


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's cache folder."""
    monkeypatch.setenv("QCALO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def small_showers() -> tuple[np.ndarray, np.ndarray]:
    """200 simulated showers, flat 2-500 GeV, seed 7."""
    energy = np.random.default_rng(7).uniform(2, 500, 200)
    return simulate(energy, seed=7), energy


@pytest.fixture(scope="session")
def sim_file(tmp_path_factory, small_showers) -> Path:
    cells, energy = small_showers
    path = tmp_path_factory.mktemp("data") / "sim.h5"
    return write_showers(path, cells, energy, ecal_3dgan(), producer="tests", seed=7)


def write_h5(path: Path, **datasets) -> Path:
    """A raw HDF5 file with exactly these datasets (for layouts and bad inputs)."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path
