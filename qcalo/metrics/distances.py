"""Distances between a reference sample and a candidate, each with its stated convention.

* KL divergence is KL(reference || candidate) = sum p log(p / q) in nats, on histograms or
  profiles normalised to unit sum; both are smoothed as (h + eps) / sum(h + eps) with eps = 1e-6
  of the total, so an empty candidate bin costs a large but finite amount.
* Jensen-Shannon is the JS divergence in bits (0 = identical, 1 = disjoint), no smoothing.
* Separation power is the CaloChallenge one, 1/2 sum (h1 - h2)^2 / (h1 + h2) on unit-sum
  histograms (0 = identical, 1 = disjoint).
* Histograms of 1-D observables share one binning, taken from the reference's 0.5-99.5 %
  quantiles; values outside fall in the first or last bin, so a shifted candidate still shows.
* FPD and KPD follow Kansal et al. (arXiv 2211.10295) as implemented in jetnet, re-implemented
  here with numpy/scipy because jetnet pulls in coffea, numba and ~50 packages that the rest of
  qcalo does not need: features standardised with the reference's mean and std; FPD is the
  Frechet distance extrapolated to infinite sample size by a linear fit in 1/N; KPD is the
  unbiased MMD^2 with the kernel (x.y / d + 1)^3, median over batches, error IQR / 2.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

EPS = 1e-6


def unit_sum(h: np.ndarray) -> np.ndarray:
    """Histograms or profiles (last axis) scaled to unit sum; all-zero ones stay zero."""
    h = np.asarray(h, dtype=np.float64)
    s = h.sum(axis=-1, keepdims=True)
    return np.divide(h, s, out=np.zeros_like(h), where=s > 0)


def kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    """KL(reference || candidate) in nats between two histograms or profiles (any scale)."""
    p, q = unit_sum(reference) + EPS, unit_sum(candidate) + EPS
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def js_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1]."""
    p, q = unit_sum(reference), unit_sum(candidate)
    m = (p + q) / 2

    def kl2(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl2(p) + 0.5 * kl2(q)


def separation_power(reference: np.ndarray, candidate: np.ndarray) -> float:
    """CaloChallenge separation power of two histograms, in [0, 1]."""
    p, q = unit_sum(reference), unit_sum(candidate)
    s = p + q
    nz = s > 0
    return float(0.5 * np.sum((p[nz] - q[nz]) ** 2 / s[nz]))


def wasserstein1(
    reference: np.ndarray,
    candidate: np.ndarray,
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
) -> float:
    """1-Wasserstein distance of two 1-D samples (optionally weighted), in their own unit."""
    return float(wasserstein_distance(reference, candidate, ref_weights, cand_weights))


def shared_edges(reference: np.ndarray, bins: int = 50) -> np.ndarray:
    """Bin edges from the reference's 0.5-99.5 % quantiles (a single value gets a unit-width bin)."""
    lo, hi = np.quantile(reference, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in `edges`, values outside counted in the first or last bin."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0].astype(np.float64)


def mean_shape(profiles: np.ndarray) -> np.ndarray:
    """Mean of per-shower profiles each normalised to unit sum."""
    return unit_sum(profiles).mean(axis=0)


def shape_mse(reference: np.ndarray, candidate: np.ndarray) -> float:
    """MSE of the mean normalised shower shapes, in units of the reference shape's peak.

    The 3DGAN analysis compares mean shower shapes per primary-energy bin; dividing by the
    reference peak makes the number dimensionless (a 10 % error at the peak adds 0.01 / K).
    """
    r, c = mean_shape(reference), mean_shape(candidate)
    peak = r.max() if r.max() > 0 else 1.0
    return float(np.mean(((c - r) / peak) ** 2))


def profile_mre(reference: np.ndarray, candidate: np.ndarray, min_fraction: float = 1e-3) -> float:
    """Mean relative error |c - r| / r of the mean normalised profiles, over the bins holding at
    least `min_fraction` of the reference peak (the far tails are noise, not shape)."""
    r, c = mean_shape(reference), mean_shape(candidate)
    use = r >= min_fraction * r.max()
    return float(np.mean(np.abs(c[use] - r[use]) / r[use])) if use.any() else 0.0


def max_relative_error(reference: np.ndarray, candidate: np.ndarray, min_fraction: float = 1e-3) -> float:
    """Largest |c - r| / r over bins (e.g. mean pixel energies) holding at least `min_fraction`
    of the reference maximum."""
    use = reference >= min_fraction * reference.max()
    return float(np.max(np.abs(candidate[use] - reference[use]) / reference[use])) if use.any() else 0.0


def mean_column_w1(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean over columns (pixels) of the 1-Wasserstein distance of their per-row values."""
    return float(np.mean([wasserstein1(r, c) for r, c in zip(reference.T, candidate.T, strict=True)]))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two samples of feature vectors.

    Tr sqrt(S1 S2) is computed as the sum of the square roots of the eigenvalues of the
    symmetric S1^1/2 S2 S1^1/2, which stays exact for singular covariances.
    """
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    w, v = np.linalg.eigh(s1)
    half = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(half @ s2 @ half), 0.0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross)


def _standardise(reference: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = reference.mean(axis=0), reference.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(a - mu) / sd for a in (reference, *others)]


def fpd(
    reference: np.ndarray, candidate: np.ndarray, num_points: int = 8, num_batches: int = 10, seed: int = 0
) -> tuple[float, float]:
    """Frechet physics distance at infinite N and its fit error (Kansal et al.): the distance at
    `num_points` sample sizes from N/4 to N (N the smaller sample), linear fit in 1/N."""
    x, y = _standardise(reference, candidate)
    n_max = min(len(x), len(y))
    sizes = np.unique((1.0 / np.linspace(4.0 / n_max, 1.0 / n_max, num_points)).astype(int))
    sizes = sizes[sizes >= 2]
    if sizes.size < 3:  # too few showers to extrapolate: the plain distance, error unknown
        return frechet_distance(x, y), float("nan")
    rng = np.random.default_rng(seed)
    vals = []
    for n in sizes:
        d = [
            frechet_distance(x[rng.choice(len(x), n, False)], y[rng.choice(len(y), n, False)])
            for _ in range(num_batches)
        ]
        vals.append(np.mean(d))
    (slope, intercept), cov = np.polyfit(1.0 / sizes, vals, 1, cov=True)
    return float(intercept), float(np.sqrt(cov[1, 1]))


def _mmd2_poly(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )


def kpd(
    reference: np.ndarray, candidate: np.ndarray, num_batches: int = 10, batch_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel physics distance: median unbiased MMD^2 over batches, and IQR / 2."""
    x, y = _standardise(reference, candidate)
    n = min(batch_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    vals = [
        _mmd2_poly(x[rng.choice(len(x), n, False)], y[rng.choice(len(y), n, False)])
        for _ in range(num_batches)
    ]
    q25, q50, q75 = np.percentile(vals, [25, 50, 75])
    return float(q50), float((q75 - q25) / 2)
