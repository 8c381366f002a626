"""Round trips through the writer and loader, and every layout read as it is published."""

import numpy as np
import pytest
from conftest import write_h5

from qcalo.data.dataset import open_showers
from qcalo.data.formats import open_shower_file
from qcalo.data.geometry import ecal_3dgan, parse_geometry
from qcalo.data.writer import ShowerWriter, write_showers
from qcalo.errors import DataError


def test_round_trip_writer_loader(sim_file, small_showers):
    cells, energy = small_showers
    f = open_shower_file(sim_file)
    assert f.layout == "3dgan" and f.geometry == ecal_3dgan() and f.n == 200
    np.testing.assert_array_equal(f.read(0, 200), cells)
    np.testing.assert_allclose(f.energy, energy.astype(np.float32))
    data = open_showers(sim_file)
    c, e = data.read()
    np.testing.assert_array_equal(c, cells)
    import h5py

    with h5py.File(sim_file) as h5:
        assert h5.attrs["producer"] == "tests" and h5.attrs["seed"] == 7
        assert "qcalo_version" in h5.attrs and h5["ECAL"].dtype == np.float32


def test_published_3dgan_layouts(tmp_path):
    rng = np.random.default_rng(0)
    cells = rng.exponential(1e-3, (6, 25, 25, 25))  # float64, as some published files are
    e = np.array([10.0, 20, 30, 40, 50, 60])
    a = open_shower_file(write_h5(tmp_path / "a.h5", ECAL=cells, energy=e[:, None]))
    target = np.stack([np.zeros(6), e, np.ones(6)], axis=1)
    b = open_shower_file(write_h5(tmp_path / "b.h5", ECAL=cells, target=target))
    for f in (a, b):
        np.testing.assert_array_equal(f.energy, e)
        np.testing.assert_allclose(f.read(0, 6), cells.astype(np.float32))
        assert f.geometry.shape == (25, 25, 25) and f.geometry.depth_axis == 2


def test_calochallenge_layout_mev_to_gev_and_voxel_order(tmp_path):
    n, shape = 4, (45, 16, 9)
    showers = np.arange(n * 6480, dtype=np.float32).reshape(n, 6480)
    inc = np.array([[1000.0], [2000.0], [4000.0], [1e6]])
    f = open_shower_file(write_h5(tmp_path / "cc.h5", showers=showers, incident_energies=inc))
    assert f.layout == "calochallenge" and f.geometry == parse_geometry("calochallenge-2")
    np.testing.assert_allclose(f.energy, [1.0, 2.0, 4.0, 1000.0])
    cells = f.read(0, n)
    assert cells.shape == (n, *shape)
    # voxel index = layer * (16 * 9) + alpha * 9 + r, values in GeV
    assert cells[1, 2, 3, 4] == pytest.approx((6480 + 2 * 144 + 3 * 9 + 4) * 1e-3)


def test_calochallenge_geometry_given_by_user(tmp_path):
    path = write_h5(tmp_path / "cc.h5", showers=np.ones((2, 60)), incident_energies=np.ones((2, 1)))
    with pytest.raises(DataError, match="no known geometry matches"):
        open_shower_file(path)
    f = open_shower_file(path, "5x3x4")
    assert f.read(0, 2).shape == (2, 5, 3, 4) and f.geometry.axes == ("layer", "alpha", "r")


def test_several_files_and_glob_form_one_dataset(tmp_path, small_showers):
    cells, energy = small_showers
    for k in range(3):
        write_showers(
            tmp_path / f"part{k}.h5",
            cells[k * 50 : (k + 1) * 50],
            energy[k * 50 : (k + 1) * 50],
            ecal_3dgan(),
            "tests",
        )
    data = open_showers(str(tmp_path / "part*.h5"))
    assert len(data) == 150 and len(data.files) == 3
    c, e = data.read()
    np.testing.assert_array_equal(c, cells[:150])


def test_files_of_different_geometry_do_not_mix(tmp_path, small_showers):
    cells, energy = small_showers
    a = write_showers(tmp_path / "a.h5", cells[:5], energy[:5], ecal_3dgan(), "tests")
    b = write_showers(tmp_path / "b.h5", cells[:5, :, :, :20], energy[:5], ecal_3dgan(25, 20), "tests")
    with pytest.raises(DataError, match="b.h5.*geometry"):
        open_showers([a, b])


def test_writer_is_atomic(tmp_path, small_showers):
    cells, energy = small_showers
    path = write_showers(tmp_path / "out.h5", cells[:3], energy[:3], ecal_3dgan(), "first")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), ShowerWriter(path, ecal_3dgan(), "second") as w:
        w.append(cells[:10], energy[:10])
        raise RuntimeError("killed halfway")
    assert path.read_bytes() == before  # the old file survives untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # no temporary left behind
    with pytest.raises(DataError, match="out.h5.*'energy'"):
        write_showers(path, cells[:3], energy[:2], ecal_3dgan(), "third")
    assert path.read_bytes() == before
