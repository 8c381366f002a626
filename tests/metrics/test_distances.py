"""Distances on cases with known answers."""

import numpy as np
import pytest

from qcalo.metrics import distances as D
from qcalo.metrics.classifier import classifier_auc, null_auc_sigma, roc_auc

rng = np.random.default_rng(0)
A = rng.standard_normal(200_000)
B = rng.standard_normal(200_000)


def test_identical_inputs_give_zero():
    h = np.array([1.0, 5, 3, 0, 2])
    assert D.kl_divergence(h, h) == pytest.approx(0, abs=1e-12)
    assert D.js_divergence(h, 2 * h) == pytest.approx(0, abs=1e-12)
    assert D.separation_power(h, h) == 0
    assert D.wasserstein1(A, A) == 0
    prof = rng.random((50, 25))
    assert D.shape_mse(prof, prof) == 0 and D.profile_mre(prof, prof) == 0
    x = rng.standard_normal((500, 4))
    assert D.frechet_distance(x, x) == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("shift", [0.25, 0.5, 1.0])
def test_shifted_gaussians(shift):
    # W1 of N(0,1) and N(mu,1) is mu; KL is mu^2 / 2; Frechet distance is mu^2 per dimension.
    assert D.wasserstein1(A, B + shift) == pytest.approx(shift, abs=0.01)
    edges = np.linspace(-6, 6, 241)
    kl = D.kl_divergence(D.histogram(A, edges), D.histogram(B + shift, edges))
    assert kl == pytest.approx(shift**2 / 2, rel=0.05)
    x, y = rng.standard_normal((20_000, 3)), rng.standard_normal((20_000, 3)) + shift
    assert D.frechet_distance(x, y) == pytest.approx(3 * shift**2, rel=0.05, abs=0.01)


def test_kl_direction_and_smoothing():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    # KL(p||q) is finite and equals log 2 up to the smoothing; the reverse pays for q's mass in p's
    # empty bin: 0.5 log(0.5 / 1e-6)
    assert D.kl_divergence(p, q) == pytest.approx(np.log(2), abs=1e-4)
    assert D.kl_divergence(q, p) > 5


def test_bounded_distances_of_disjoint_histograms():
    assert D.js_divergence([1, 0], [0, 1]) == pytest.approx(1)
    assert D.separation_power([1, 0], [0, 1]) == pytest.approx(1)


def test_histogram_counts_outliers_in_edge_bins():
    edges = D.shared_edges(A, 10)
    h = D.histogram(A + 100, edges)
    assert h[-1] == A.size and h[:-1].sum() == 0


def test_fpd_and_kpd_floor_and_shift():
    x, y = rng.standard_normal((3000, 5)), rng.standard_normal((3000, 5))
    fpd_same, err = D.fpd(x, y)
    assert abs(fpd_same) < 3 * err + 0.01
    assert D.fpd(x, y + 0.3)[0] > 5 * 0.3**2 * 0.8
    kpd_same, kerr = D.kpd(x, y)
    assert abs(kpd_same) < 0.05
    assert D.kpd(x, y + 0.3)[0] > kpd_same + 10 * kerr


def test_roc_auc():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_classifier_two_sample_test():
    x, y = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 4))
    auc, sigma = classifier_auc(x, y, seed=1)
    assert sigma == pytest.approx(null_auc_sigma(400, 400), rel=0.2)
    assert abs(auc - 0.5) < 4 * sigma
    y[:, 0] += 1.0  # optimal AUC: Phi(1 / sqrt 2) = 0.76
    auc, _ = classifier_auc(x, y, seed=1)
    assert 0.70 < auc < 0.80
    assert classifier_auc(x, y, seed=1)[0] == auc  # reproducible
