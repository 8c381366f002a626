"""Primary-energy bins, found from the data: one bin per fixed energy, or equal-width bins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qcalo.errors import ConfigError

MAX_FIXED = 20  # a fixed-energy scan: at most this many distinct energies, each repeated
MIN_REPEAT = 5  # ... at least this many times on average


@dataclass(frozen=True)
class EnergyBins:
    edges: np.ndarray  # (k + 1,) GeV, increasing
    centres: np.ndarray  # (k,) GeV: the fixed energies, or the bin middles
    fixed: bool  # one bin per fixed energy

    @classmethod
    def from_energies(cls, energy: np.ndarray, n_bins: int = 10) -> EnergyBins:
        values = np.unique(energy)
        if values.size <= MAX_FIXED and energy.size >= MIN_REPEAT * values.size:
            mids = (values[1:] + values[:-1]) / 2
            return cls(np.concatenate([[values[0] * 0.99], mids, [values[-1] * 1.01]]), values, True)
        return cls.from_edges(np.linspace(energy.min(), energy.max() * (1 + 1e-9), n_bins + 1))

    @classmethod
    def from_edges(cls, edges: Sequence[float]) -> EnergyBins:
        e = np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise ConfigError(f"energy bin edges must be >= 2 increasing values, got {list(edges)}")
        return cls(e, (e[1:] + e[:-1]) / 2, False)

    def __len__(self) -> int:
        return self.edges.size - 1

    def assign(self, energy: np.ndarray) -> np.ndarray:
        """Bin index per shower, -1 outside every bin."""
        idx = np.searchsorted(self.edges, energy, side="right") - 1
        return np.where((idx >= 0) & (idx < len(self)), idx, -1)

    def labels(self) -> list[str]:
        if self.fixed:
            return [f"{c:.4g} GeV" for c in self.centres]
        return [f"{lo:.4g}-{hi:.4g} GeV" for lo, hi in zip(self.edges[:-1], self.edges[1:], strict=True)]
