"""Speed of the built-in shower simulation: showers per second, flat 2-500 GeV, on this machine.

Prints, side by side in one run: the in-memory rate (median of repeats), the rate including the
gzip-compressed HDF5 writer, and the rate at a few fixed energies. The target is >= 1,000 showers/s
on a 2-core machine, averaged over the flat spectrum.

    python bench/bench_simulate.py [--n 4000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from qcalo.data.simulate import ShowerModel, sample_energies, simulate, simulate_file


def rate(fn, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    model = ShowerModel()
    energies = sample_energies(args.n, np.random.default_rng(0), (2.0, 500.0))
    simulate(energies[:256], seed=0, model=model)  # warm-up
    print(f"cores: {os.cpu_count()}, numpy {np.__version__}, {args.n} showers, median of {args.repeats}")
    flat = rate(lambda: simulate(energies, seed=1, model=model), args.n, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.h5")
        to_file = rate(lambda: simulate_file(path, energies, 1, model, progress=False), args.n, args.repeats)
        size = os.path.getsize(path) / args.n / 1024
    print(f"flat 2-500 GeV, in memory        : {flat:8.0f} showers/s  (target >= 1000)")
    print(f"flat 2-500 GeV, written to HDF5  : {to_file:8.0f} showers/s  ({size:.1f} KiB/shower, gzip)")
    print(f"writer overhead                  : {flat / to_file:8.2f} x")
    for e in (10.0, 100.0, 500.0):
        fixed = np.full(1000, e)
        r = rate(lambda fixed=fixed: simulate(fixed, seed=2, model=model), 1000, args.repeats)
        print(f"fixed {e:3.0f} GeV, in memory           : {r:8.0f} showers/s")


if __name__ == "__main__":
    main()
