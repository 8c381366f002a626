"""Smooth energy dependences fitted to a data set once and kept: polynomials in ln E.

A flat 2-500 GeV spectrum has few showers near any one energy, so generators and validation
compare with fits over all showers (the 3DGAN's 'fit from ROOT' of the sampling fraction)
rather than with the few showers of a bin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from qcalo.data.dataset import ShowerData
from qcalo.data.views import total_energy
from qcalo.metrics.observables import relative_depth, transverse_rms


def fit_log_energy(energy: np.ndarray, values: np.ndarray, degree: int = 2, stat=np.mean) -> list[float]:
    """Coefficients of a per-shower quantity's `stat` (mean, std, ...) as a polynomial in ln E
    (highest power first), fitted to up to 20 energy bins of equal population."""
    edges = np.unique(np.quantile(np.log(energy), np.linspace(0, 1, 21)))
    idx = np.clip(np.searchsorted(edges, np.log(energy), "right") - 1, 0, max(len(edges) - 2, 0))
    centres, stats = [], []
    for b in np.unique(idx):
        sel = idx == b
        centres.append(np.log(energy[sel]).mean())
        stats.append(stat(values[sel]))
    degree = min(degree, len(centres) - 1)
    return np.polyfit(centres, stats, degree).tolist()


def polyval_log(coeffs: list[float] | torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """Evaluate a `fit_log_energy` polynomial at energies (GeV), in torch. `coeffs` may also be a
    (powers, K) tensor of K polynomials, with energy (B, 1): (B, K)."""
    x = torch.log(energy)
    out = torch.zeros_like(x)
    for c in coeffs:
        out = out * x + c
    return out


def at_energy(coeffs: list[float], energy: float) -> float:
    """`polyval_log` at one energy, as a float (float64 throughout)."""
    return polyval_log(coeffs, torch.tensor(float(energy), dtype=torch.float64)).item()


def per_shower(data: ShowerData, *observables: Callable) -> tuple[np.ndarray, ...]:
    """(primary energies, then `observable(cells, geometry)` of every shower for each
    observable) of a whole data set, read chunk by chunk in one pass."""
    columns: list[list[np.ndarray]] = [[] for _ in range(len(observables) + 1)]
    for cells, e in data.chunks():
        columns[0].append(e)
        for column, observable in zip(columns[1:], observables, strict=True):
            column.append(np.asarray(observable(cells, data.geometry), dtype=np.float64))
    return tuple(np.concatenate(c) for c in columns)


def deposited_energies(data: ShowerData) -> tuple[np.ndarray, np.ndarray]:
    """(primary energies, deposited energies) of a whole data set, read chunk by chunk (GeV)."""
    return per_shower(data, total_energy)


def fit_sampling_fraction(energy: np.ndarray, deposited: np.ndarray, degree: int = 2) -> list[float]:
    """`fit_log_energy` of deposited / E: the expected ECAL sum of a shower at E."""
    return fit_log_energy(energy, deposited / energy, degree)


def fit_data(data: ShowerData) -> dict[str, Any]:
    """The fits of a training set that plug-ins and validation share, in one pass: the sampling
    fraction (mean and spread), the mean shower depth and the width along the first transverse axis."""
    axes = data.geometry.transverse_axes
    width_axis = axes[0] if axes else None
    observables = [total_energy, relative_depth]
    if width_axis is not None:
        observables.append(lambda cells, geo: transverse_rms(cells, geo, width_axis))
    e, d, depth, *width = per_shower(data, *observables)
    return {
        "energy_range": [float(data.energy.min()), float(data.energy.max())],
        "sampling_fraction": fit_sampling_fraction(e, d),
        "sampling_fraction_spread": fit_log_energy(e, d / e, stat=np.std),
        "depth": fit_log_energy(e, depth),
        "width": fit_log_energy(e, width[0]) if width else None,
        "width_axis": width_axis,
    }
