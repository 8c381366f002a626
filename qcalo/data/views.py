"""Reduced views of showers, defined once for models and metrics alike.

Every function takes a batch (numpy array or torch tensor) of shape (N, *geometry.shape) and
returns the same kind of object. Re-binning splits each source bin over the target bins in
proportion to their overlap, so energy is conserved for any k (25 layers into 8 pixels too).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from qcalo.data.geometry import Geometry
from qcalo.errors import ConfigError


@lru_cache(maxsize=64)
def rebin_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) matrix M with rows summing to 1: profile @ M is the profile in n_out bins."""
    if n_in <= 0 or n_out <= 0:
        raise ConfigError(f"rebin: bin counts must be positive, got {n_in} -> {n_out}")
    edges_in = np.linspace(0.0, 1.0, n_in + 1)
    edges_out = np.linspace(0.0, 1.0, n_out + 1)
    lo = np.maximum(edges_in[:-1, None], edges_out[None, :-1])
    hi = np.minimum(edges_in[1:, None], edges_out[None, 1:])
    m = np.clip(hi - lo, 0.0, None) * n_in
    m.setflags(write=False)
    return m


def rebin(profile: Any, bins: int | None) -> Any:
    """Re-bin the last axis of `profile` to `bins` bins (None: unchanged)."""
    n_in = profile.shape[-1]
    if bins is None or bins == n_in:
        return profile
    m = rebin_matrix(n_in, int(bins))
    if isinstance(profile, np.ndarray):
        return profile @ m.astype(profile.dtype, copy=False)
    import torch

    return profile @ torch.tensor(m, dtype=profile.dtype, device=profile.device)


def _check(cells: Any, geometry: Geometry) -> None:
    if tuple(cells.shape[1:]) != geometry.shape:
        raise ConfigError(
            f"showers of shape {tuple(cells.shape[1:])} do not match geometry {geometry.describe()}"
        )


def sum_except(cells: Any, keep: int) -> Any:
    """Projection of a batch onto one geometry axis `keep` (sum over all the other cell axes)."""
    axes = tuple(i + 1 for i in range(cells.ndim - 1) if i != keep)
    return cells.sum(axis=axes)


def longitudinal_profile(cells: Any, geometry: Geometry, bins: int | None = None) -> Any:
    """Energy per layer (sum over the transverse axes), shape (N, n_layers or bins)."""
    _check(cells, geometry)
    return rebin(sum_except(cells, geometry.depth_axis), bins)


def transverse_profile(cells: Any, geometry: Geometry, axis: str | int, bins: int | None = None) -> Any:
    """Energy along one transverse axis (sum over all others), shape (N, size or bins)."""
    _check(cells, geometry)
    index = geometry.axis(axis)
    if index == geometry.depth_axis:
        raise ConfigError(f"transverse_profile: '{geometry.axes[index]}' is the depth axis")
    return rebin(sum_except(cells, index), bins)


def total_energy(cells: Any, geometry: Geometry) -> Any:
    """Deposited energy per shower, shape (N,)."""
    _check(cells, geometry)
    return cells.reshape(cells.shape[0], -1).sum(axis=1)


def reduced_view(
    cells: Any,
    geometry: Geometry,
    kind: str = "longitudinal",
    bins: int | None = 8,
    axis: str | int | None = None,
) -> Any:
    """The view named in configs: 'longitudinal' or 'transverse' (with `axis`), re-binned."""
    if kind == "longitudinal":
        return longitudinal_profile(cells, geometry, bins)
    if kind == "transverse":
        if axis is None:
            axis = geometry.transverse_axes[0]
        return transverse_profile(cells, geometry, axis, bins)
    raise ConfigError(f"reduced view '{kind}': expected 'longitudinal' or 'transverse'")


@dataclass(frozen=True)
class View:
    """A named reduced view of showers, e.g. the 8-pixel longitudinal profile a quantum
    generator produces. Its geometry is one axis: the depth axis, or one transverse axis."""

    kind: str = "longitudinal"  # or "transverse"
    bins: int | None = 8  # None: the axis' own cells
    axis: str | None = None  # transverse: which axis (default the first transverse one)

    @classmethod
    def parse(cls, spec: str) -> View:
        """'longitudinal:8', 'longitudinal' (all layers), 'transverse:x:5', 'transverse:x'."""
        parts = spec.strip().split(":")
        kind = parts[0]
        try:
            if kind == "longitudinal" and len(parts) <= 2:
                return cls(kind, int(parts[1]) if len(parts) == 2 else None)
            if kind == "transverse" and len(parts) <= 3:
                axis = parts[1] if len(parts) >= 2 and parts[1] else None
                return cls(kind, int(parts[2]) if len(parts) == 3 else None, axis)
        except ValueError:
            pass
        raise ConfigError(f"view '{spec}': expected 'longitudinal[:BINS]' or 'transverse[:AXIS[:BINS]]'")

    @classmethod
    def infer(cls, full: Geometry, reduced: Geometry) -> View | None:
        """The view that turns `full` showers into `reduced` ones (a one-axis geometry named
        after one of `full`'s axes), or None if there is none."""
        if len(reduced.shape) != 1 or len(full.shape) == 1 or reduced.axes[0] not in full.axes:
            return None
        if reduced.axes[0] == full.axes[full.depth_axis]:
            return cls("longitudinal", reduced.shape[0])
        return cls("transverse", reduced.shape[0], reduced.axes[0])

    def _axis(self, geometry: Geometry) -> int:
        if self.kind == "longitudinal":
            return geometry.depth_axis
        return geometry.axis(self.axis) if self.axis is not None else geometry.transverse_axes[0]

    def geometry(self, geometry: Geometry) -> Geometry:
        """The one-axis geometry of this view of `geometry`."""
        index = self._axis(geometry)
        n = self.bins or geometry.shape[index]
        return Geometry((n,), (geometry.axes[index],), 0, name=f"{geometry.name}:{self.spec()}")

    def apply(self, cells: Any, geometry: Geometry) -> Any:
        """Reduce a batch; a batch already in this view (a reduced generator's output) passes."""
        if self.is_reduced(geometry):
            return cells
        return reduced_view(cells, geometry, self.kind, self.bins, self.axis)

    def is_reduced(self, geometry: Geometry) -> bool:
        """True if `geometry` is already this view (one axis of the right name and size)."""
        if len(geometry.shape) != 1:
            return False
        name_ok = self.kind == "longitudinal" or self.axis in (None, geometry.axes[0])
        return name_ok and (self.bins is None or geometry.shape[0] == self.bins)

    def output_geometry(self, geometry: Geometry) -> Geometry:
        return geometry if self.is_reduced(geometry) else self.geometry(geometry)

    def spec(self) -> str:
        parts = [self.kind] + ([self.axis] if self.kind == "transverse" and self.axis else [])
        return ":".join(parts + ([str(self.bins)] if self.bins else []))
