"""Speed of qcalo.metrics on 100k showers of 25^3: observables, then every distance with floors.

Prints, from one run: the time to compute all per-shower observables of N showers held in memory
(no disk: showers are simulated once and repeated), the throughput in showers/s, and the time of
`with_noise_floor` (every distance, floor from `--splits` halvings, classifiers once) for the
N-shower sample against an N-shower candidate. Target: observables of 100k showers well under a
minute.

    python bench/bench_metrics.py [--n 100000] [--distinct 2000] [--splits 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from qcalo.data.dataset import ShowerData
from qcalo.data.geometry import ecal_3dgan
from qcalo.data.simulate import simulate
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import with_noise_floor
from qcalo.metrics.observables import compute_features


def repeated(n: int, distinct: int, seed: int) -> ShowerData:
    energy = np.random.default_rng(seed).uniform(2, 500, distinct)
    cells = simulate(energy, seed=seed)
    reps = -(-n // distinct)
    return ShowerData.from_arrays(
        np.tile(cells, (reps, 1, 1, 1))[:n], np.tile(energy, reps)[:n], ecal_3dgan()
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--distinct", type=int, default=2000, help="distinct simulated showers, repeated to N")
    p.add_argument("--splits", type=int, default=3)
    args = p.parse_args()
    print(
        f"cores: {os.cpu_count()}, {args.n} showers of 25^3 in memory ({args.n * 15625 * 4 / 2**30:.1f} GiB)"
    )
    ref_data = repeated(args.n, args.distinct, 1)
    t0 = time.perf_counter()
    ref = compute_features(ref_data, cell_sample=2000)
    t_obs = time.perf_counter() - t0
    print(f"observables            : {t_obs:7.1f} s  ({args.n / t_obs:,.0f} showers/s; target < 60 s)")
    del ref_data
    cand = compute_features(repeated(args.n, args.distinct, 2), cell_sample=2000, seed=1)
    bins = EnergyBins.from_energies(ref.energy, 10)
    t0 = time.perf_counter()
    with_noise_floor(ref, {"candidate": cand}, bins, splits=args.splits, classifier_splits=1)
    t_dist = time.perf_counter() - t0
    print(f"distances + floors     : {t_dist:7.1f} s  ({args.splits} splits, classifiers in one)")


if __name__ == "__main__":
    main()
