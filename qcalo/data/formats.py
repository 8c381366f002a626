"""Shower files as they are published: layout detection, validation and chunked reading.

Two layouts are read as they are:

* 3DGAN (CERN, ``EleEscan_*.h5``): ``ECAL`` (N, X, Y, Z) cell energies in GeV, z along the beam;
  the primary energy in GeV from ``energy`` ((N,) or (N, 1)) or else ``target[:, 1]``. qcalo's
  writer produces this layout too and adds the geometry as an attribute.
* CaloChallenge: ``showers`` (N, voxels) and ``incident_energies`` (N, 1) in MeV, reshaped by a
  geometry (preset, 'AxBxC' or inferred from the voxel count when a preset matches).

Whatever the file, qcalo hands out float32 cells in GeV with shape (n, *geometry.shape) and
primary energies in GeV. Primary energies are read and checked when the file is opened (they are
small); cells are checked chunk by chunk as they are read, since files may exceed memory.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from qcalo.data.geometry import PRESETS, Geometry, ecal_3dgan, parse_geometry
from qcalo.errors import DataError

GEOMETRY_ATTR = "qcalo_geometry"
MEV = 1e-3  # GeV per MeV


@dataclass
class ShowerFile:
    """One validated shower file; cells are read lazily, in row ranges."""

    path: Path
    layout: str  # '3dgan' or 'calochallenge'
    geometry: Geometry
    energy: np.ndarray  # (n,) primary energy in GeV, float64
    cells_key: str
    to_gev: float  # factor from the stored unit to GeV
    _handle: h5py.File | None = field(default=None, repr=False, compare=False)
    _pid: int = field(default=-1, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.energy.size)

    def _file(self) -> h5py.File:
        # A handle opened before a fork (DataLoader workers) must not be shared: reopen per process.
        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle

    def read(self, start: int, stop: int) -> np.ndarray:
        """Cells of rows [start, stop) as float32 GeV, shape (stop - start, *geometry.shape)."""
        try:
            raw = self._file()[self.cells_key][start:stop]
        except (OSError, KeyError, RuntimeError) as exc:
            raise DataError(
                self.path,
                f"rows {start}..{stop - 1} cannot be read ({exc}); the file may be truncated or damaged",
                self.cells_key,
            ) from None
        cells = np.asarray(raw, dtype=np.float32).reshape((stop - start, *self.geometry.shape))
        if self.to_gev != 1.0:
            cells *= np.float32(self.to_gev)
        _check_cells(self, cells, start)
        return cells

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Cells of the given ascending row indices, read as one contiguous range."""
        cells = self.read(int(rows[0]), int(rows[-1]) + 1)
        return cells if rows.size == len(cells) else cells[rows - rows[0]]

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, -1
        return state


class ArrayShowerFile(ShowerFile):
    """Showers already in memory (a generator's output) behind the same interface as a file."""

    def __init__(self, cells: np.ndarray, energy: np.ndarray, geometry: Geometry, name: str = "<memory>"):
        cells = np.asarray(cells, dtype=np.float32)
        if tuple(cells.shape[1:]) != geometry.shape:
            raise DataError(name, f"showers of shape {tuple(cells.shape[1:])}; expected {geometry.shape}")
        energy = _primary_energy(Path(name), energy, "energy", len(cells))
        super().__init__(Path(name), "memory", geometry, energy, "ECAL", 1.0)
        self.cells = cells

    def read(self, start: int, stop: int) -> np.ndarray:
        cells = self.cells[start:stop]
        _check_cells(self, cells, start)
        return cells

    def close(self) -> None:
        pass


def _check_cells(f: ShowerFile, cells: np.ndarray, start: int) -> None:
    # Two cheap passes over the chunk; the slow search for the culprit only runs on failure.
    if np.isfinite(cells.sum(dtype=np.float64)) and cells.min(initial=0.0) >= 0:
        return
    finite = np.isfinite(cells)
    if not finite.all():
        row = start + int(np.argwhere(~finite)[0][0])
        raise DataError(f.path, f"row {row} holds NaN or inf; expected finite cell energies", f.cells_key)
    row = start + int(np.argwhere(cells < 0)[0][0])
    raise DataError(
        f.path,
        f"row {row} holds a negative energy ({cells[cells < 0].min():g}); expected cell energies >= 0",
        f.cells_key,
    )


def open_shower_file(path: str | Path, geometry: str | Geometry | None = None) -> ShowerFile:
    """Open and validate one file; `geometry` is required only where the file cannot tell."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    if path.is_dir():
        raise DataError(path, "is a directory; expected an HDF5 shower file")
    if path.stat().st_size == 0:
        raise DataError(path, "is empty (0 bytes); expected an HDF5 shower file")
    if not h5py.is_hdf5(path):
        raise DataError(
            path, "is not an HDF5 file; expected 3DGAN ('ECAL') or CaloChallenge ('showers') HDF5"
        )
    try:
        with h5py.File(path, "r") as h5:
            keys = list(h5.keys())
            if "ECAL" in h5:
                return _open_3dgan(path, h5, geometry)
            if "showers" in h5:
                return _open_calochallenge(path, h5, geometry)
    except DataError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise DataError(path, f"cannot be read as HDF5 ({exc}); the file may be truncated") from None
    lower = {k.lower(): k for k in keys}
    hint = [
        want for want in ("ECAL", "showers") if difflib.get_close_matches(want.lower(), list(lower), 1, 0.6)
    ]
    did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise DataError(
        path,
        f"no shower dataset: expected 'ECAL' (3DGAN) or 'showers' + "
        f"'incident_energies' (CaloChallenge); found {keys}{did_you_mean}",
    )


def _dataset(path: Path, h5: h5py.File, key: str) -> h5py.Dataset:
    obj = h5[key]
    if not isinstance(obj, h5py.Dataset):
        raise DataError(path, "is a group; expected a dataset", key)
    return obj


def _primary_energy(path: Path, raw: np.ndarray, key: str, n: int) -> np.ndarray:
    energy = np.asarray(raw, dtype=np.float64).reshape(-1)
    if energy.size != n:
        raise DataError(
            path,
            f"holds {energy.size} primary energies but the showers are {n}; expected one per shower",
            key,
        )
    bad = ~np.isfinite(energy) | (energy <= 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            path, f"row {row} has primary energy {energy[row]:g}; expected finite values > 0", key
        )
    return energy


def _stored_geometry(path: Path, obj: h5py.Dataset | h5py.File) -> Geometry | None:
    text = obj.attrs.get(GEOMETRY_ATTR)
    if text is None:
        return None
    try:
        return Geometry.from_json(text if isinstance(text, str) else text.decode())
    except Exception as exc:  # noqa: BLE001 - any damage to the attribute is the same mistake
        raise DataError(path, f"attribute '{GEOMETRY_ATTR}' is not a qcalo geometry ({exc})") from None


def _open_3dgan(path: Path, h5: h5py.File, geometry: str | Geometry | None) -> ShowerFile:
    ecal = _dataset(path, h5, "ECAL")
    # qcalo's own files carry their geometry (any rank, e.g. an 8-pixel reduced view); published
    # 3DGAN files are (N, x, y, z).
    stored = _stored_geometry(path, h5) if geometry is None else None
    if stored is None and geometry is None and ecal.ndim != 4:
        raise DataError(path, f"has shape {ecal.shape}; expected rank 4 (N, x, y, z)", "ECAL")
    n = ecal.shape[0]
    if n == 0:
        raise DataError(path, "holds no showers (N = 0)", "ECAL")
    if geometry is not None:
        geom = parse_geometry(geometry)
    elif stored is not None:
        geom = stored
    elif ecal.shape[1] == ecal.shape[2]:
        geom = ecal_3dgan(ecal.shape[1], ecal.shape[3])
    else:
        geom = Geometry(ecal.shape[1:], ("x", "y", "z"), 2, name="3dgan-like")
    if tuple(ecal.shape[1:]) != geom.shape:
        raise DataError(
            path,
            f"has showers of shape {tuple(ecal.shape[1:])}; expected "
            f"{geom.shape} for geometry {geom.describe()}",
            "ECAL",
        )
    if not np.issubdtype(ecal.dtype, np.number):
        raise DataError(path, f"has dtype {ecal.dtype}; expected float cell energies", "ECAL")
    if "energy" in h5:
        key = "energy"
        raw = _dataset(path, h5, key)[()]
        if np.ndim(raw) not in (1, 2) or (np.ndim(raw) == 2 and np.shape(raw)[1] != 1):
            raise DataError(path, f"has shape {np.shape(raw)}; expected (N,) or (N, 1)", key)
    elif "target" in h5:
        key = "target"
        target = _dataset(path, h5, key)
        if target.ndim != 2 or target.shape[1] < 2:
            raise DataError(
                path,
                f"has shape {target.shape}; expected (N, k >= 2) with the primary energy in column 1",
                key,
            )
        raw = target[:, 1]
    else:
        raise DataError(
            path,
            "is missing; expected 'energy' (N,) or (N, 1) in GeV, or 'target' "
            "with the primary energy in column 1",
            "energy",
        )
    energy = _primary_energy(path, raw, key, n)
    return ShowerFile(path, "3dgan", geom, energy, "ECAL", 1.0)


def _open_calochallenge(path: Path, h5: h5py.File, geometry: str | Geometry | None) -> ShowerFile:
    showers = _dataset(path, h5, "showers")
    if showers.ndim != 2:
        raise DataError(path, f"has shape {showers.shape}; expected rank 2 (N, voxels)", "showers")
    n, voxels = showers.shape
    if n == 0:
        raise DataError(path, "holds no showers (N = 0)", "showers")
    if "incident_energies" not in h5:
        raise DataError(path, "is missing; expected (N, 1) incident energies in MeV", "incident_energies")
    if geometry is not None:
        geom = parse_geometry(geometry)
    else:
        geom = _stored_geometry(path, h5) or _geometry_for_voxels(path, voxels)
    if geom.n_cells != voxels:
        raise DataError(
            path,
            f"has {voxels} voxels per shower; expected {geom.n_cells} for geometry {geom.describe()}",
            "showers",
        )
    raw = _dataset(path, h5, "incident_energies")[()]
    if np.ndim(raw) not in (1, 2) or (np.ndim(raw) == 2 and np.shape(raw)[1] != 1):
        raise DataError(path, f"has shape {np.shape(raw)}; expected (N, 1)", "incident_energies")
    energy = _primary_energy(path, raw, "incident_energies", n) * MEV
    return ShowerFile(path, "calochallenge", geom, energy, "showers", MEV)


def _geometry_for_voxels(path: Path, voxels: int) -> Geometry:
    matches = [g for name, g in PRESETS.items() if name.startswith("calo") and g.n_cells == voxels]
    if len(matches) == 1:
        return matches[0]
    raise DataError(
        path,
        f"has {voxels} voxels per shower and no known geometry matches; pass "
        "one, e.g. --geometry 45x16x9 (layers x angle x radius) or "
        "--geometry calochallenge-2",
        "showers",
    )
