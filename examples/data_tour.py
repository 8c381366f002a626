"""A tour of qcalo's data layer: simulate, open, split, stream, reduce, write back.

    python examples/data_tour.py [--n 2000] [--out-dir runs/data_tour]

Everything a generator later sees goes through these few calls, whatever file layout you have.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from qcalo.data.dataset import open_showers
from qcalo.data.simulate import sample_energies, simulate_file
from qcalo.data.views import longitudinal_profile, total_energy
from qcalo.data.writer import write_showers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="showers to simulate")
    p.add_argument("--out-dir", type=Path, default=Path("runs/data_tour"))
    args = p.parse_args()

    # 1. Simulate showers (flat 2-500 GeV) into a 3DGAN-layout file.
    energies = sample_energies(args.n, np.random.default_rng(0), (2.0, 500.0))
    path = simulate_file(args.out_dir / "showers.h5", energies, seed=0, progress=False)

    # 2. Open it (any number of files or globs), split by fraction, stream shuffled batches.
    with open_showers(path) as data:
        train, val = data.split(0.2, seed=0)
        print(f"{len(data)} showers, geometry {data.geometry.describe()}")
        print(f"train {len(train)}, validation {len(val)}")
        stream = train.stream(batch_size=128, seed=0)  # what the training loop reads
        cells, energy = next(iter(stream))
        print(
            f"one batch: cells {tuple(cells.shape)} {cells.dtype} GeV, "
            f"E in [{energy.min():.1f}, {energy.max():.1f}] GeV"
        )

        # 3. The reduced views models and metrics share: 8-pixel longitudinal profile, total energy.
        pixels = longitudinal_profile(cells, data.geometry, bins=8)
        fraction = total_energy(cells, data.geometry) / energy
        print("mean 8-pixel longitudinal profile (fraction of deposited energy):")
        print("  " + " ".join(f"{x:.3f}" for x in (pixels / pixels.sum(1, keepdim=True)).mean(0).tolist()))
        print(f"deposited / primary energy: {fraction.mean():.4f} +- {fraction.std():.4f}")

        # 4. Write the validation showers back out, atomically, with their geometry.
        c_val, e_val = val.read()
        out = write_showers(args.out_dir / "validation.h5", c_val, e_val, data.geometry, "data_tour")
    print(f"wrote {len(e_val)} validation showers to {out}")


if __name__ == "__main__":
    main()
