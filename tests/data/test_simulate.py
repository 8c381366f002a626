"""The built-in simulation: determinism, command line, parameters."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from qcalo.data.dataset import open_showers
from qcalo.data.simulate import ShowerModel, simulate


def test_same_seed_same_showers_other_seed_other_showers():
    e = np.array([5.0, 50.0, 400.0])
    a, b, c = simulate(e, seed=1), simulate(e, seed=1), simulate(e, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (3, 25, 25, 25) and (a >= 0).all()


def test_other_cell_and_layer_counts():
    cells = simulate([20.0, 20.0], seed=0, model=ShowerModel(n_cells=15, n_layers=30))
    assert cells.shape == (2, 15, 15, 30)
    assert 0.015 < cells.sum() / 40 < 0.03


def test_bad_energies():
    with pytest.raises(ValueError, match="> 0"):
        simulate([10.0, 0.0])


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "qcalo.data.simulate", *args], capture_output=True, text=True
    )


def test_cli_is_bit_for_bit_reproducible(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        proc = run_cli(
            "--n", "30", "--energy-range", "2", "500", "--seed", "11", "--out", str(out), "--quiet"
        )
        assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()
    data = open_showers(a)
    assert len(data) == 30 and 2 <= data.energy.min() and data.energy.max() <= 500
    with h5py.File(a) as f:
        assert f.attrs["seed"] == 11 and f.attrs["producer"] == "qcalo.data.simulate"


def test_cli_fixed_energies_n_per_energy(tmp_path):
    out = tmp_path / "fixed.h5"
    proc = run_cli("--energies", "10", "50", "100", "--n", "4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 12 showers" in proc.stdout
    np.testing.assert_array_equal(open_showers(out).energy, np.repeat([10.0, 50.0, 100.0], 4))


def test_cli_rejects_bad_options(tmp_path):
    proc = run_cli("--n", "5", "--energy-range", "50", "10", "--out", str(tmp_path / "x.h5"))
    assert proc.returncode == 2 and "energy-range" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.h5").exists()
