"""One shower data set from one or more files, read in chunks, split and shuffled by seed.

`open_showers(paths)` accepts paths and glob patterns and returns a `ShowerData`. Its `split`
makes train/validation subsets (by fraction, in blocks of rows so reads stay contiguous, or by
whole files); its `stream` is a torch IterableDataset of batches read from disk: files larger
than memory are fine. The shuffle is a pure function of (seed, epoch), so runs are reproducible
and a resumed run can skip exactly the batches it had already seen.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from qcalo.data.formats import ArrayShowerFile, ShowerFile, open_shower_file
from qcalo.data.geometry import Geometry
from qcalo.errors import ConfigError, DataError


def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Paths and glob patterns, in the order given, each pattern's matches sorted."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise ConfigError("no shower files given")
    out: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(text, "no file matches this pattern")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(text))
    return out


@dataclass
class ShowerData:
    """A data set: files plus, per file, which rows belong to it (None: all)."""

    files: list[ShowerFile]
    rows: list[np.ndarray | None]

    @property
    def geometry(self) -> Geometry:
        return self.files[0].geometry

    def _mask(self, i: int) -> np.ndarray:
        r = self.rows[i]
        return np.ones(self.files[i].n, bool) if r is None else r

    def __len__(self) -> int:
        return sum(f.n if r is None else int(r.sum()) for f, r in zip(self.files, self.rows, strict=True))

    @property
    def energy(self) -> np.ndarray:
        """Primary energies (GeV) of the selected showers, in file order."""
        return np.concatenate([f.energy[self._mask(i)] for i, f in enumerate(self.files)])

    def split(
        self, val_fraction: float = 0.1, by: str = "fraction", seed: int = 0, block: int | None = None
    ) -> tuple[ShowerData, ShowerData]:
        """(train, validation). 'fraction': random blocks of `block` rows from every file (default:
        up to 64 rows, fewer in small files so that each has at least 200 blocks), so reads stay
        contiguous; 'file': whole files, at least one each side."""
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
        rng = np.random.default_rng(seed)
        if by == "file":
            if len(self.files) < 2:
                raise ConfigError("split by file needs at least two files; use by='fraction'")
            n_val = min(max(1, round(val_fraction * len(self.files))), len(self.files) - 1)
            val_idx = set(rng.permutation(len(self.files))[:n_val].tolist())
            train_idx = [i for i in range(len(self.files)) if i not in val_idx]
            return self._subset(train_idx), self._subset(sorted(val_idx))
        if by != "fraction":
            raise ConfigError(f"split by '{by}': expected 'fraction' or 'file'")
        train_rows, val_rows = [], []
        for i, f in enumerate(self.files):
            mask = self._mask(i)
            size = block or min(64, max(1, f.n // 200))
            n_blocks = math.ceil(f.n / size)
            n_val = round(val_fraction * n_blocks)
            val_blocks = np.zeros(n_blocks, bool)
            val_blocks[rng.permutation(n_blocks)[:n_val]] = True
            in_val = np.repeat(val_blocks, size)[: f.n]
            train_rows.append(mask & ~in_val)
            val_rows.append(mask & in_val)
        train, val = ShowerData(self.files, train_rows), ShowerData(self.files, val_rows)
        if len(train) == 0 or len(val) == 0:
            raise ConfigError(
                f"split of {len(self)} showers with val_fraction={val_fraction} "
                f"and block={block} leaves one side empty"
            )
        return train, val

    @classmethod
    def from_arrays(cls, cells: np.ndarray, energy: np.ndarray, geometry: Geometry) -> ShowerData:
        """A data set over showers in memory (N, *geometry.shape) GeV and primary energies (N,)."""
        return cls([ArrayShowerFile(cells, energy, geometry)], [None])

    def _subset(self, file_indices: list[int]) -> ShowerData:
        return ShowerData([self.files[i] for i in file_indices], [self.rows[i] for i in file_indices])

    def chunks(self, chunk_rows: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(cells, primary energy) of the selected showers, in file order, chunk by chunk."""
        for i, f in enumerate(self.files):
            mask = self._mask(i)
            for start in range(0, f.n, chunk_rows):
                rows = np.flatnonzero(mask[start : start + chunk_rows]) + start
                if rows.size:
                    yield f.read_rows(rows), f.energy[rows]

    def read(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All selected showers (or the first `limit`) in memory: (cells, primary energy)."""
        cells, energy, n = [], [], 0
        for c, e in self.chunks():
            if limit is not None:
                c, e = c[: limit - n], e[: limit - n]
            cells.append(c)
            energy.append(e)
            n += len(e)
            if limit is not None and n >= limit:
                break
        return np.concatenate(cells), np.concatenate(energy)

    def close(self) -> None:
        """Close the files' HDF5 handles (they reopen on the next read)."""
        for f in self.files:
            f.close()

    def __enter__(self) -> ShowerData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream(self, batch_size: int = 64, **kwargs) -> ShowerStream:
        """Shuffled (cells, energy) float32 tensor batches in GeV; see ShowerStream. For several
        reader processes wrap it: `torch.utils.data.DataLoader(stream, batch_size=None, num_workers=N)`."""
        return ShowerStream(self, batch_size=batch_size, **kwargs)


def open_showers(
    paths: str | Path | Sequence[str | Path], geometry: str | Geometry | None = None
) -> ShowerData:
    """Open files (or globs) as one data set; all must share one geometry."""
    files = [open_shower_file(p, geometry) for p in expand_paths(paths)]
    first = files[0]
    for f in files[1:]:
        if f.geometry.shape != first.geometry.shape or f.geometry.depth_axis != first.geometry.depth_axis:
            raise DataError(
                f.path,
                f"has geometry {f.geometry.describe()}; expected "
                f"{first.geometry.describe()} like {first.path}",
            )
    return ShowerData(files, [None] * len(files))


class ShowerStream(IterableDataset):
    """Batches of (cells, energy) tensors streamed from disk.

    Shuffling: the order of chunks (`chunk_rows` contiguous rows of one file) is permuted, then
    the rows of `buffer_chunks` consecutive chunks are permuted together; both by
    `np.random.default_rng([seed, epoch])`. With several DataLoader workers, worker w reads every
    num_workers-th window; the batches are then reproducible for a given worker count, and
    `set_epoch(epoch, start_batch)` (resuming mid-epoch) is exact with the default of no workers.

    Distributed training (`rank`, `world_size`): every rank reads the epoch's batches in the same
    order and keeps every world_size-th one, starting at its rank; partial batches are dropped
    and all ranks take the same number of batches, as DistributedDataParallel needs. (Each rank
    reads all the data: simple and exact, at world_size times the I/O.)

    `energy_power` p > 0 resamples each window's rows with replacement, in proportion to E^-p
    (p = 1 turns a flat spectrum log-uniform): the rare low energies of a flat 2-500 GeV set are
    seen as often as the high ones. Epochs keep their length in rows.
    """

    def __init__(
        self,
        data: ShowerData,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        chunk_rows: int = 256,
        buffer_chunks: int = 8,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        energy_power: float = 0.0,
    ):
        if batch_size <= 0 or chunk_rows <= 0 or buffer_chunks <= 0:
            raise ConfigError("batch_size, chunk_rows and buffer_chunks must be positive")
        self.data, self.batch_size, self.shuffle, self.seed = data, batch_size, shuffle, seed
        self.chunk_rows, self.buffer_chunks, self.drop_last = chunk_rows, buffer_chunks, drop_last
        self.epoch, self.start_batch = 0, 0
        self.rank, self.world_size = rank, world_size
        self.energy_power = float(energy_power)
        if world_size > 1:
            self.drop_last = True

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch's shuffle and skip its first `start_batch` batches (for resuming)."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        n = len(self.data)
        if self.world_size > 1:
            return n // self.batch_size // self.world_size
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _windows(self) -> list[list[tuple[int, np.ndarray]]]:
        """The epoch's plan: windows of (file index, selected row indices), rows in read order."""
        chunks = []
        for i, f in enumerate(self.data.files):
            mask = self.data._mask(i)
            for start in range(0, f.n, self.chunk_rows):
                idx = np.flatnonzero(mask[start : start + self.chunk_rows]) + start
                if idx.size:
                    chunks.append((i, idx))
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            chunks = [chunks[j] for j in rng.permutation(len(chunks))]
        return [chunks[k : k + self.buffer_chunks] for k in range(0, len(chunks), self.buffer_chunks)]

    def _batches(self, worker: int = 0, n_workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        skip_rows = self.start_batch * self.batch_size * self.world_size
        left: tuple[np.ndarray, np.ndarray] | None = None
        for w, window in enumerate(self._windows()):
            n_window = sum(idx.size for _, idx in window)
            energy = np.concatenate([self.data.files[i].energy[idx] for i, idx in window])
            if self.energy_power:
                weight = energy.astype(np.float64) ** -self.energy_power
                order = rng.choice(n_window, n_window, p=weight / weight.sum())
            else:
                order = rng.permutation(n_window) if self.shuffle else np.arange(n_window)
            if w % n_workers != worker:
                continue
            if skip_rows >= n_window:  # a resumed epoch: this window was consumed already
                skip_rows -= n_window
                continue
            cells = np.concatenate([self.data.files[i].read_rows(idx) for i, idx in window])
            order, skip_rows = order[skip_rows:], 0
            pos = 0
            if left is not None:  # complete the batch begun in the previous window
                take = order[: self.batch_size - len(left[1])]
                left = (np.concatenate([left[0], cells[take]]), np.concatenate([left[1], energy[take]]))
                pos = take.size
                if len(left[1]) < self.batch_size:
                    continue
                yield left
                left = None
            # Each batch is gathered straight from the window: one copy per row.
            n_full = (order.size - pos) // self.batch_size
            for k in range(n_full):
                rows = order[pos + k * self.batch_size : pos + (k + 1) * self.batch_size]
                yield cells[rows], energy[rows]
            rows = order[pos + n_full * self.batch_size :]
            left = (cells[rows], energy[rows]) if rows.size else None
        if left is not None and not self.drop_last:
            yield left

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        remaining = len(self) - self.start_batch
        for k, (cells, energy) in enumerate(self._batches(worker, n_workers)):
            if self.world_size > 1:
                if k // self.world_size >= remaining:
                    break
                if k % self.world_size != self.rank:
                    continue
            yield torch.from_numpy(cells), torch.from_numpy(energy.astype(np.float32))
