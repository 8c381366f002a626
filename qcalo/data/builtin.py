"""The built-in data set: simulated once, cached in the user's cache folder, reused after.

A first run needs no download. The file is checked against a SHA-256 written beside it; a
missing, truncated or otherwise damaged file is simulated again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from qcalo.atomic import write_text
from qcalo.data.simulate import ShowerModel, sample_energies, simulate_file

DEFAULT_N = 4000
DEFAULT_SEED = 2024
ENERGY_RANGE = (2.0, 500.0)
SIM_VERSION = 1  # bump when the simulation's output changes, so stale caches are not reused


def cache_dir() -> Path:
    """$QCALO_CACHE_DIR, else $XDG_CACHE_HOME/qcalo, else ~/.cache/qcalo."""
    if os.environ.get("QCALO_CACHE_DIR"):
        return Path(os.environ["QCALO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qcalo"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def builtin_dataset(n: int | None = None, seed: int | None = None, progress: bool = True) -> Path:
    """Path of the built-in data set (n showers, flat 2-500 GeV), simulating it if needed."""
    n = DEFAULT_N if n is None else n
    seed = DEFAULT_SEED if seed is None else seed
    path = cache_dir() / f"builtin-v{SIM_VERSION}-n{n}-seed{seed}.h5"
    digest = path.with_name(path.name + ".sha256")
    if path.exists() and digest.exists():
        if digest.read_text().strip() == _sha256(path):
            return path
        print(f"qcalo: cached built-in data set {path} is damaged; simulating it again")
    elif progress:
        print(
            f"qcalo: simulating the built-in data set ({n} showers, {ENERGY_RANGE[0]:g}-"
            f"{ENERGY_RANGE[1]:g} GeV) into {path}"
        )
    energies = sample_energies(n, np.random.default_rng([seed, 1]), ENERGY_RANGE)
    digest.unlink(missing_ok=True)
    simulate_file(path, energies, seed, ShowerModel(), progress=progress)
    write_text(digest, _sha256(path) + "\n")
    return path
