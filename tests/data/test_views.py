import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qcalo.data.geometry import ecal_3dgan, parse_geometry
from qcalo.data.views import (
    longitudinal_profile,
    rebin,
    rebin_matrix,
    reduced_view,
    total_energy,
    transverse_profile,
)
from qcalo.errors import ConfigError

cells_st = arrays(np.float64, (4, 6), elements=st.floats(0, 1e3))


@settings(max_examples=50, deadline=None)
@given(n_in=st.integers(1, 60), n_out=st.integers(1, 60))
def test_rebin_conserves_energy(n_in, n_out):
    m = rebin_matrix(n_in, n_out)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    prof = np.random.default_rng(n_in).random((3, n_in))
    np.testing.assert_allclose(rebin(prof, n_out).sum(axis=1), prof.sum(axis=1))


def test_rebin_25_layers_to_8_pixels():
    m = rebin_matrix(25, 8)
    # pixel 0 covers layers [0, 3.125): layers 0-2 whole and an eighth of layer 3
    np.testing.assert_allclose(m[:4, 0], [1, 1, 1, 0.125])
    np.testing.assert_allclose(m[3, 1], 0.875)


def test_views_match_hand_sums_numpy_and_torch(small_showers):
    cells, _ = small_showers
    g = ecal_3dgan()
    c = cells[:10]
    np.testing.assert_allclose(longitudinal_profile(c, g), c.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(transverse_profile(c, g, "x"), c.sum(axis=(2, 3)), rtol=1e-5)
    np.testing.assert_allclose(
        transverse_profile(c, g, "y", bins=5), c.sum(axis=(1, 3)) @ rebin_matrix(25, 5), rtol=1e-5
    )
    np.testing.assert_allclose(total_energy(c, g), c.sum(axis=(1, 2, 3)), rtol=1e-5)
    t = torch.from_numpy(c)
    pixels = reduced_view(t, g, "longitudinal", bins=8)
    assert isinstance(pixels, torch.Tensor) and pixels.shape == (10, 8)
    np.testing.assert_allclose(pixels.numpy(), longitudinal_profile(c, g, 8), rtol=1e-5)
    np.testing.assert_allclose(pixels.sum(1).numpy(), total_energy(c, g), rtol=1e-5)


def test_views_follow_the_geometry_depth_axis():
    g = parse_geometry("calochallenge-2")
    c = np.zeros((1, 45, 16, 9))
    c[0, 30, 2, 1] = 1.0
    assert longitudinal_profile(c, g).shape == (1, 45) and longitudinal_profile(c, g)[0, 30] == 1
    with pytest.raises(ConfigError, match="depth axis"):
        transverse_profile(c, g, "layer")
    with pytest.raises(ConfigError, match="do not match geometry"):
        longitudinal_profile(np.zeros((1, 25, 25, 25)), g)


def test_named_views(small_showers, tmp_path):
    from qcalo.data.dataset import open_showers
    from qcalo.data.views import View
    from qcalo.data.writer import write_showers

    cells, energy = small_showers
    g = ecal_3dgan()
    v = View.parse("longitudinal:8")
    assert v.geometry(g).shape == (8,) and v.geometry(g).axes == ("z",) and v.spec() == "longitudinal:8"
    pixels = v.apply(cells, g)
    np.testing.assert_allclose(pixels, longitudinal_profile(cells, g, 8), rtol=1e-6)
    assert v.apply(pixels, v.geometry(g)) is pixels  # already reduced: passes through
    t = View.parse("transverse:y:5")
    assert t.geometry(g).axes == ("y",) and t.apply(cells, g).shape == (200, 5)
    assert View.parse("transverse").geometry(g).shape == (25,)
    for bad in ("diagonal:3", "longitudinal:x", "transverse:x:3:4"):
        with pytest.raises(ConfigError, match="view"):
            View.parse(bad)
    # a reduced view round-trips through the writer and loader with its geometry
    path = write_showers(tmp_path / "pixels.h5", pixels, energy, v.geometry(g), "tests")
    data = open_showers(path)
    assert data.geometry == v.geometry(g)
    np.testing.assert_allclose(data.read()[0], pixels, rtol=1e-6)
