"""The yardstick: two samples of the same physics sit at the noise floor; a distorted copy is
flagged in every observable the distortion touches (and every such metric ranks it worse)."""

import numpy as np
import pytest

from qcalo.data.dataset import ShowerData
from qcalo.data.geometry import ecal_3dgan
from qcalo.data.simulate import simulate
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import with_noise_floor
from qcalo.metrics.observables import ShowerFeatures, compute_features, longitudinal_correlation

pytestmark = pytest.mark.slow  # statistically heavy (thousands of showers); still run in CI

N = 2400


def features(cells, energy, seed, cell_sample=0):
    data = ShowerData.from_arrays(cells, energy, ecal_3dgan())
    return compute_features(data, cell_sample=cell_sample, seed=seed)


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(3)
    e_ref, e_cand = rng.uniform(10, 200, N), rng.uniform(10, 200, N)
    ref = simulate(e_ref, seed=11)
    same = simulate(e_cand, seed=12)
    deeper = np.zeros_like(same)
    deeper[..., 1:] = same[..., :-1]
    cands = {
        "same": features(same, e_cand, 1, N),
        "deeper": features(deeper, e_cand, 2, N),
        "scaled": features(same * 1.1, e_cand, 3, N),
    }
    bins = EnergyBins.from_energies(e_ref, 4)
    return with_noise_floor(features(ref, e_ref, 0, N), cands, bins, splits=6, classifier_splits=1, seed=0)


DEEPER = [
    "mse_shapes",
    "mse_shape_z",
    "kl_shape_z",
    "js_shape_z",
    "mre_shape_z",
    "w1_mean_z",
    "kl_mean_z",
    "js_mean_z",
    "sep_mean_z",
    "w1_width_z",
    "corr_longitudinal",
    "w1_occupancy",
    "mre_sampling_fraction",
    "fpd",
    "kpd",
    "auc_high_level",
]
SCALED = [
    "mre_sampling_fraction",
    "w1_sampling_fraction",
    "kl_sampling_fraction",
    "js_sampling_fraction",
    "sep_sampling_fraction",
    "w1_deposited_energy",
    "kl_deposited_energy",
    "js_cell_energy",
    "kl_cell_energy",
    "sep_cell_energy",
    "w1_cell_energy",
    "fpd",
    "kpd",
    "auc_high_level",
]


def test_same_physics_sits_at_the_floor(results):
    flagged = [m for m, v in results["same"].items() if v["above_floor"]]
    assert flagged == []
    assert len(results["same"]) > 50


@pytest.mark.parametrize("name, touched", [("deeper", DEEPER), ("scaled", SCALED)])
def test_distortion_is_flagged_where_it_acts(results, name, touched):
    res = results[name]
    for metric in touched:
        assert res[metric]["above_floor"], metric
        assert res[metric]["overall"] > results["floor"][metric]["overall"], metric


def test_a_global_scale_leaves_shapes_alone(results):
    for metric in ("mse_shapes", "kl_shape_z", "w1_mean_z", "w1_width_x", "corr_longitudinal"):
        assert not results["scaled"][metric]["above_floor"], metric


def test_per_bin_values_and_spreads(results):
    m = results["deeper"]["mse_shape_z"]
    assert len(m["per_bin"]) == 4 and all(v is not None and v > 0 for v in m["per_bin"])
    assert results["floor"]["mse_shape_z"]["spread"] > 0


def test_a_candidates_figures_do_not_depend_on_the_others_in_its_report():
    """A candidate alone or beside another gets the same numbers, and so does the floor: a Conv3D
    figure must not depend on whether Conv2D shared its report."""
    rng = np.random.default_rng(5)
    e = rng.uniform(10, 200, 300)
    ref = features(simulate(e, seed=21), e, 0)
    cand = simulate(e, seed=22)
    a, other = features(cand, e, 1), features(cand * 1.2, e, 2)
    bins = EnergyBins.from_energies(e, 2)
    alone = with_noise_floor(ref, {"a": a}, bins, splits=3, classifier_splits=0)
    beside = with_noise_floor(ref, {"other": other, "a": a}, bins, splits=3, classifier_splits=0)
    assert repr(alone["a"]) == repr(beside["a"])
    assert repr(alone["floor"]) == repr(beside["floor"])
    assert repr(beside["other"]) != repr(beside["a"])


def test_moments_occupancy_and_correlation_on_hand_made_showers():
    cells = np.zeros((2, 25, 25, 25), np.float32)
    cells[0, 12, 12, 5] = 1.0
    cells[1, 12, 12, 5] = cells[1, 12, 12, 7] = 0.5
    cells[1, 3, 3, 3] = 1e-9
    f = features(cells, np.array([10.0, 20.0]), 0)
    mean, width = f.moments("z")
    np.testing.assert_allclose(mean, [5.5, 6.5], atol=1e-6)
    np.testing.assert_allclose(width, [0.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(f.occupancy, [1, 3])
    np.testing.assert_allclose(f.sampling_fraction, [0.1, 0.05], rtol=1e-6)
    assert f.cell_hist.sum() == 4 and f.cell_hist[1, 0] == 1  # 1e-9 GeV lands in the first bin
    f2 = compute_features(ShowerData.from_arrays(cells, np.array([10.0, 20.0]), ecal_3dgan()), threshold=1e-6)
    np.testing.assert_array_equal(f2.occupancy, [1, 2])
    corr = longitudinal_correlation(f)
    assert corr.shape == (25, 25) and np.allclose(np.diag(corr), 1)


def test_subset_keeps_cells_with_their_showers(small_showers):
    cells, energy = small_showers
    data = ShowerData.from_arrays(cells, energy, ecal_3dgan())
    f = compute_features(data, cell_sample=50, seed=4)
    assert f.cells.shape == (50, 15625)
    part = f.subset(np.arange(0, 200, 2))
    assert isinstance(part, ShowerFeatures) and part.n == 100 and part.cells is f.cells  # shared
    matrix = part.cell_matrix()
    assert 10 < len(matrix) < 40
    for k, row in enumerate(part.cell_rows):
        original = cells[2 * row].reshape(-1)
        np.testing.assert_allclose(matrix[k], original / original.sum(), rtol=1e-5)


def test_gamma_maximum_is_the_gamma_functions_and_steady_where_the_argmax_jumps():
    from scipy.stats import gamma

    from qcalo.metrics.observables import gamma_maximum, peak_layer

    t = np.arange(200) + 0.5
    for a, b in ((4.0, 0.5), (6.0, 0.7)):  # untruncated: exactly (a - 1) / b, in 0-based layers
        assert gamma_maximum(gamma.pdf(t, a, scale=1 / b)) == pytest.approx((a - 1) / b - 0.5, abs=0.01)
    smooth = gamma.pdf(np.arange(25) + 0.5, 4.5, scale=1 / 0.5)  # 25 layers, maximum near 6.5
    jagged = smooth * np.where(np.arange(25) % 2, 0.9, 1.1)  # a Conv2D-like layer-to-layer jitter
    jagged[9] = 1.05 * jagged.max()  # and one layer of the flat top (0.84 of the maximum) high
    assert peak_layer(jagged) - peak_layer(smooth) > 2  # measured 2.2
    assert abs(gamma_maximum(jagged) - gamma_maximum(smooth)) < 0.3
