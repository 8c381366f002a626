"""Every kind of bad input gets one clear error naming file, dataset and what was expected."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import write_h5

from qcalo.data.dataset import open_showers
from qcalo.errors import DataError

GOOD = np.zeros((3, 25, 25, 25), np.float32)
E = np.array([10.0, 20.0, 30.0])


def bad(tmp_path, **datasets):
    return write_h5(tmp_path / "bad.h5", **datasets)


CASES = {
    "missing ECAL": (dict(ecal=GOOD, energy=E), None, "did you mean 'ECAL'"),
    "missing energy": (dict(ECAL=GOOD), "energy", "expected 'energy'"),
    "wrong rank": (dict(ECAL=np.zeros((3, 25, 25)), energy=E), "ECAL", "expected rank 4"),
    "wrong target": (dict(ECAL=GOOD, target=np.ones((3, 1))), "target", "column 1"),
    "energy shape": (dict(ECAL=GOOD, energy=np.ones((3, 2))), "energy", r"expected \(N,\) or \(N, 1\)"),
    "N mismatch": (dict(ECAL=GOOD, energy=np.ones(4)), "energy", "4 primary energies but the showers are 3"),
    "zero energy": (
        dict(ECAL=GOOD, energy=np.array([10.0, 0.0, 5.0])),
        "energy",
        "row 1 has primary energy 0",
    ),
    "negative energy": (dict(ECAL=GOOD, energy=np.array([10.0, 1, -5])), "energy", "row 2"),
    "nan energy": (dict(ECAL=GOOD, energy=np.array([np.nan, 1, 5])), "energy", "row 0"),
    "no showers": (dict(ECAL=np.zeros((0, 25, 25, 25)), energy=np.zeros(0)), "ECAL", "no showers"),
    "cc missing energies": (dict(showers=np.ones((2, 6480))), "incident_energies", "MeV"),
    "cc wrong rank": (
        dict(showers=np.ones((2, 45, 144)), incident_energies=np.ones((2, 1))),
        "showers",
        "rank 2",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_datasets(tmp_path, case):
    datasets, dataset, message = CASES[case]
    path = bad(tmp_path, **datasets)
    with pytest.raises(DataError, match=message) as info:
        open_showers(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert info.value.dataset == dataset
    if dataset:
        assert f"dataset '{dataset}'" in str(info.value)


@pytest.mark.parametrize(
    "value, message", [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (-1e-3, "negative energy")]
)
def test_bad_cell_values_found_when_read(tmp_path, value, message):
    cells = GOOD.copy()
    cells[2, 3, 4, 5] = value
    data = open_showers(bad(tmp_path, ECAL=cells, energy=E))
    with pytest.raises(DataError, match=f"row 2 .*{message}|row 2 holds {message}"):
        data.read()


def test_not_hdf5_empty_missing_truncated(tmp_path, sim_file):
    (tmp_path / "text.h5").write_text("not hdf5")
    (tmp_path / "empty.h5").write_bytes(b"")
    raw = sim_file.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    expectations = {
        "text.h5": "not an HDF5 file",
        "empty.h5": "empty",
        "missing.h5": "no such file",
        "cut.h5": "truncated",
    }
    for name, message in expectations.items():
        with pytest.raises(DataError, match=message) as info:
            open_showers(tmp_path / name).read()
        assert name in str(info.value)


def test_glob_without_matches(tmp_path):
    with pytest.raises(DataError, match="no file matches"):
        open_showers(str(tmp_path / "*.h5"))


def test_command_line_prints_one_line_and_exits_2(tmp_path):
    path = bad(tmp_path, ECAL=GOOD, energy=np.ones(4))
    proc = subprocess.run(
        [sys.executable, "-m", "qcalo.data.inspect", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "dataset 'energy'" in proc.stderr
