"""Write showers in the 3DGAN layout (``ECAL``, ``energy``), atomically.

Everything is written to a temporary file next to the target and renamed over it only when
complete (`qcalo.atomic`). Generators' outputs go through this writer too.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from qcalo import __version__
from qcalo.atomic import temporary_sibling
from qcalo.data.formats import GEOMETRY_ATTR
from qcalo.data.geometry import Geometry
from qcalo.errors import DataError

ROWS_PER_CHUNK = 16  # HDF5 chunk of 16 showers: ~1 MB for 25^3 cells


class ShowerWriter:
    """Append batches of showers; the file appears under its name on a clean `close()`."""

    def __init__(
        self,
        path: str | Path,
        geometry: Geometry,
        producer: str,
        seed: int | None = None,
        attrs: dict[str, Any] | None = None,
        compression: str | None = "gzip",
    ):
        self.path = Path(path)
        self.geometry = geometry
        self.tmp = temporary_sibling(self.path)
        self.n = 0
        self._h5 = h5py.File(self.tmp, "w", track_order=False)
        chunk = (ROWS_PER_CHUNK, *geometry.shape)
        opts: dict[str, Any] = {"compression": compression, "shuffle": compression is not None}
        if compression == "gzip":
            opts["compression_opts"] = 1  # fast; the cells are mostly zeros and compress ~10x
        self._ecal = self._h5.create_dataset(
            "ECAL",
            shape=(0, *geometry.shape),
            maxshape=(None, *geometry.shape),
            dtype="f4",
            chunks=chunk,
            **opts,
        )
        self._energy = self._h5.create_dataset(
            "energy", shape=(0,), maxshape=(None,), dtype="f4", chunks=(4096,)
        )
        self._ecal.attrs["unit"] = "GeV"
        self._energy.attrs["unit"] = "GeV"
        meta = {
            GEOMETRY_ATTR: geometry.to_json(),
            "producer": producer,
            "qcalo_version": __version__,
            "layout": "3dgan",
        }
        if seed is not None:
            meta["seed"] = int(seed)
        meta.update(attrs or {})
        for key, value in meta.items():
            self._h5.attrs[key] = value

    def append(self, cells: np.ndarray, energy: np.ndarray) -> None:
        cells = np.asarray(cells, dtype=np.float32)
        energy = np.asarray(energy, dtype=np.float32).reshape(-1)
        if tuple(cells.shape[1:]) != self.geometry.shape:
            raise DataError(
                self.path,
                f"cannot append showers of shape {cells.shape[1:]}; expected {self.geometry.shape}",
                "ECAL",
            )
        if energy.size != cells.shape[0]:
            raise DataError(
                self.path, f"{energy.size} primary energies for {cells.shape[0]} showers", "energy"
            )
        k = cells.shape[0]
        self._ecal.resize(self.n + k, axis=0)
        self._energy.resize(self.n + k, axis=0)
        self._ecal[self.n :] = cells
        self._energy[self.n :] = energy
        self.n += k

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        self._h5.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written; the target path is left as it was."""
        try:
            self._h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShowerWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_showers(
    path: str | Path,
    cells: np.ndarray,
    energy: np.ndarray,
    geometry: Geometry,
    producer: str,
    seed: int | None = None,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write one array of showers (N, *geometry.shape) in GeV and their primary energies."""
    with ShowerWriter(path, geometry, producer, seed, attrs) as w:
        w.append(cells, energy)
    return Path(path)
