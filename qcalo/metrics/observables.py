"""Physics observables of a batch of showers, vectorised numpy, axes named by the geometry.

These are the definitions used to validate the built-in simulation against Geant4 and, later,
to judge every generator; each function takes cells (N, *geometry.shape) in GeV.
"""

from __future__ import annotations

import numpy as np

from qcalo.data.geometry import Geometry
from qcalo.data.views import longitudinal_profile, total_energy, transverse_profile


def _weighted_mean(profile: np.ndarray, coord: np.ndarray) -> np.ndarray:
    tot = profile.sum(axis=1)
    return np.divide((profile * coord).sum(axis=1), tot, out=np.zeros_like(tot), where=tot > 0)


def mean_depth(cells: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Per shower, the energy-weighted mean of (layer + 0.5), in layers."""
    prof = longitudinal_profile(cells, geometry).astype(np.float64)
    return _weighted_mean(prof, np.arange(prof.shape[1]) + 0.5)


def transverse_rms(cells: np.ndarray, geometry: Geometry, axis: str | int, centre: float | None = None):
    """Per shower, the energy-weighted RMS of (cell index - centre) along a transverse axis.

    centre defaults to the index of the cell the particle enters (the middle cell, 12 of 25).
    """
    prof = transverse_profile(cells, geometry, axis).astype(np.float64)
    if centre is None:
        centre = (prof.shape[1] - 1) // 2
    return np.sqrt(_weighted_mean(prof, (np.arange(prof.shape[1]) - centre) ** 2))


def occupancy(cells: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Per shower, the number of cells with energy above `threshold` GeV."""
    return (cells.reshape(cells.shape[0], -1) > threshold).sum(axis=1)


def peak_layer(mean_profile: np.ndarray) -> float:
    """Argmax of a mean longitudinal profile (0-based), refined by a parabola through 3 bins."""
    k = int(np.clip(np.argmax(mean_profile), 1, mean_profile.size - 2))
    y0, y1, y2 = mean_profile[k - 1 : k + 2]
    den = y0 - 2.0 * y1 + y2
    return float(k + (0.5 * (y0 - y2) / den if den != 0 else 0.0))


def resolution(deposited: np.ndarray) -> float:
    """Half the 16-84 % interval over the median: a resolution robust to leakage outliers."""
    q16, q50, q84 = np.percentile(deposited, [16, 50, 84])
    return float(0.5 * (q84 - q16) / q50)


def shower_summary(cells: np.ndarray, primary: np.ndarray, geometry: Geometry) -> dict[str, float]:
    """The figures of the Geant4 validation table, for showers of one primary energy."""
    dep = total_energy(cells, geometry).astype(np.float64)
    prof = longitudinal_profile(cells, geometry).astype(np.float64)
    return {
        "n": int(len(dep)),
        "sum_over_e": float(np.mean(dep / primary)),
        "resolution": resolution(dep),
        "peak_layer": peak_layer(prof.mean(axis=0)),
        "mean_depth": float(mean_depth(cells, geometry).mean()),
        "x_width": float(transverse_rms(cells, geometry, geometry.transverse_axes[0]).mean()),
        "cells_above_zero": float(occupancy(cells).mean()),
    }
