"""Physics observables of a batch of showers, vectorised numpy, axes named by the geometry.

These are the definitions used to validate the built-in simulation against Geant4 and, later,
to judge every generator; each function takes cells (N, *geometry.shape) in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcalo.data.dataset import ShowerData
from qcalo.data.geometry import Geometry
from qcalo.data.views import View, longitudinal_profile, rebin, sum_except, total_energy, transverse_profile
from qcalo.metrics.distances import unit_sum


def _weighted_mean(profile: np.ndarray, coord: np.ndarray) -> np.ndarray:
    tot = profile.sum(axis=1)
    return np.divide((profile * coord).sum(axis=1), tot, out=np.zeros_like(tot), where=tot > 0)


def mean_depth(cells: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Per shower, the energy-weighted mean of (layer + 0.5), in layers."""
    prof = longitudinal_profile(cells, geometry).astype(np.float64)
    return _weighted_mean(prof, np.arange(prof.shape[1]) + 0.5)


def relative_depth(cells: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Per shower, `mean_depth` over the number of layers: comparable between a full geometry
    and a view that rebins its layers."""
    return mean_depth(cells, geometry) / geometry.shape[geometry.depth_axis]


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


def gamma_maximum(mean_profile: np.ndarray) -> float:
    """Depth of the maximum (0-based layers, as `peak_layer`) of the gamma function
    dE/dt ~ t^(a-1) exp(-bt) (Longo and Sestili's longitudinal profile) with the profile's mean
    and variance: t_max = (a - 1) / b = mean - variance / mean. Unlike the argmax it does not jump
    between the layers of a flat-topped or jagged profile."""
    t = np.arange(mean_profile.size) + 0.5
    w = mean_profile / mean_profile.sum()
    mean = float((w * t).sum())
    return mean - float((w * (t - mean) ** 2).sum()) / mean - 0.5


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
        "gamma_maximum": gamma_maximum(prof.mean(axis=0)),
        "mean_depth": float(mean_depth(cells, geometry).mean()),
        "x_width": float(transverse_rms(cells, geometry, geometry.transverse_axes[0]).mean()),
        "cells_above_zero": float(occupancy(cells).mean()),
    }


# ---------------------------------------------------------------------------------------------
# Per-shower features of a whole data set, computed in one streaming pass.

CELL_LOG10_EDGES = np.linspace(-7.0, 1.0, 65)  # single-cell energy spectrum, log10 GeV


@dataclass
class ShowerFeatures:
    """Everything the metrics need from a sample, small enough to keep in memory for 100k showers.

    The projections onto each axis carry the profiles, the deposited energy and the moments along
    that axis; `cell_hist` is each shower's spectrum of single-cell energies. For a random subset
    of showers (the classifier test) `cells` holds normalised cells; it is shared, never copied,
    by subsets: `cell_index` picks this sample's rows of it and `cell_rows` says which shower each
    belongs to.
    """

    geometry: Geometry
    energy: np.ndarray  # (N,) primary energy, GeV
    profiles: dict[str, np.ndarray]  # axis name -> (N, size) energy per slice, GeV
    occupancy: np.ndarray  # (N,) cells above threshold
    cell_hist: np.ndarray  # (N, len(CELL_LOG10_EDGES) - 1) counts
    threshold: float = 0.0
    cells: np.ndarray | None = None  # (M0, n_cells) cells / deposited energy, shared by subsets
    cell_index: np.ndarray | None = None  # (M,) rows of `cells` that belong to this sample
    cell_rows: np.ndarray | None = None  # (M,) the shower (row of this sample) of each

    def cell_matrix(self) -> np.ndarray | None:
        """(M, n_cells) normalised cells of this sample's cell subset."""
        return None if self.cells is None else self.cells[self.cell_index]

    @property
    def n(self) -> int:
        return int(self.energy.size)

    @property
    def deposited(self) -> np.ndarray:
        return self.profiles[self.geometry.axes[self.geometry.depth_axis]].sum(axis=1)

    @property
    def sampling_fraction(self) -> np.ndarray:
        return self.deposited / self.energy

    @property
    def longitudinal(self) -> np.ndarray:
        return self.profiles[self.geometry.axes[self.geometry.depth_axis]]

    def normalised(self, axis: str) -> np.ndarray:
        """Profile along `axis` with unit sum per shower (empty showers stay zero)."""
        return unit_sum(self.profiles[axis])

    def moments(self, axis: str) -> tuple[np.ndarray, np.ndarray]:
        """Energy-weighted mean position and width (std) along `axis`, in cells (index + 0.5)."""
        p = self.normalised(axis)
        coord = np.arange(p.shape[1]) + 0.5
        mean = p @ coord
        var = p @ coord**2 - mean**2
        return mean, np.sqrt(np.clip(var, 0.0, None))

    def subset(self, rows: np.ndarray) -> ShowerFeatures:
        """The features of some showers (boolean mask or indices); the cell subset follows."""
        rows = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
        cell_index, cell_rows = None, None
        if self.cells is not None:
            position = np.full(self.n, -1, dtype=np.int64)
            position[rows] = np.arange(rows.size)
            keep = position[self.cell_rows] >= 0
            cell_index, cell_rows = self.cell_index[keep], position[self.cell_rows[keep]]
        return ShowerFeatures(
            self.geometry,
            self.energy[rows],
            {k: v[rows] for k, v in self.profiles.items()},
            self.occupancy[rows],
            self.cell_hist[rows],
            self.threshold,
            self.cells,
            cell_index,
            cell_rows,
        )

    def scalars(self) -> dict[str, np.ndarray]:
        """The 1-D observables, by name: the ones histogrammed and compared one by one."""
        out = {"deposited_energy": self.deposited, "sampling_fraction": self.sampling_fraction}
        for axis in self.geometry.axes:
            mean, width = self.moments(axis)
            out[f"mean_{axis}"] = mean
            out[f"width_{axis}"] = width
        out["occupancy"] = self.occupancy.astype(np.float64)
        return out

    def high_level(self) -> tuple[np.ndarray, list[str]]:
        """(N, F) high-level feature matrix for FPD/KPD and the classifier, and the names.

        Occupancy joins only for geometries of at least 64 cells: in a few-pixel view nearly
        every pixel is hit and the feature is a constant with rare outliers.
        """
        s = self.scalars()
        s.pop("deposited_energy")
        occupancy = s.pop("occupancy")
        if self.geometry.n_cells >= 64:
            s["log10_occupancy"] = np.log10(occupancy + 1.0)
        names = ["log10_primary_energy", *s]
        return np.column_stack([np.log10(self.energy), *s.values()]), names


def compute_features(
    data: ShowerData,
    threshold: float = 0.0,
    cell_sample: int = 0,
    seed: int = 0,
    chunk_rows: int = 256,
    view: View | None = None,
) -> ShowerFeatures:
    """Stream a data set once and keep its per-shower features (cells only for `cell_sample`).

    With a `view` (e.g. the 8-pixel longitudinal profile), showers are reduced to it first, so a
    full simulation and a generator working at reduced resolution are judged on the same footing.
    """
    g = data.geometry if view is None else view.output_geometry(data.geometry)
    n = len(data)
    pick = np.zeros(n, bool)
    if cell_sample:
        pick[np.random.default_rng(seed).permutation(n)[: min(cell_sample, n)]] = True
    profiles: dict[str, list[np.ndarray]] = {a: [] for a in g.axes}
    occ, hist, energy, cells, cell_rows = [], [], [], [], []
    start = 0
    n_bins = CELL_LOG10_EDGES.size - 1
    for c, e in data.chunks(chunk_rows):
        if view is not None:
            c = view.apply(c, data.geometry)
        k = len(e)
        for i, axis in enumerate(g.axes):
            profiles[axis].append(sum_except(c, i).astype(np.float64))
        flat = c.reshape(k, -1)
        above = flat > threshold
        occ.append(above.sum(axis=1))
        rows, cols = np.nonzero(above)
        b = np.clip(np.searchsorted(CELL_LOG10_EDGES, np.log10(flat[rows, cols]), "right") - 1, 0, n_bins - 1)
        hist.append(np.bincount(rows * n_bins + b, minlength=k * n_bins).reshape(k, n_bins))
        energy.append(e)
        sel = np.flatnonzero(pick[start : start + k])
        if sel.size:
            tot = flat[sel].sum(axis=1, keepdims=True)
            cells.append(np.divide(flat[sel], tot, out=np.zeros_like(flat[sel]), where=tot > 0))
            cell_rows.append(sel + start)
        start += k
    return ShowerFeatures(
        g,
        np.concatenate(energy),
        {a: np.concatenate(v) for a, v in profiles.items()},
        np.concatenate(occ),
        np.concatenate(hist).astype(np.int32),
        threshold,
        np.concatenate(cells) if cells else None,
        np.arange(sum(len(c) for c in cells)) if cells else None,
        np.concatenate(cell_rows) if cell_rows else None,
    )


def longitudinal_correlation(features: ShowerFeatures, bins: int | None = None) -> np.ndarray:
    """Correlation matrix of the (normalised, optionally re-binned) longitudinal profile bins.

    Bins without spread (e.g. always empty) get zero correlation with the others, one with itself.
    """
    p = rebin(features.normalised(features.geometry.axes[features.geometry.depth_axis]), bins)
    p = p - p.mean(axis=0)
    sd = np.sqrt((p**2).mean(axis=0))
    ok = sd > 0
    corr = np.zeros((p.shape[1], p.shape[1]))
    q = p[:, ok] / sd[ok]
    corr[np.ix_(ok, ok)] = q.T @ q / p.shape[0]
    np.fill_diagonal(corr, 1.0)
    return corr
