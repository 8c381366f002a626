"""Does the quantum generator learn the showers? Checkpoints against held-out built-in showers.

In one run: simulates held-out showers (a seed training never saw) at 10, 50 and 100 GeV,
writes an untrained checkpoint of the first run's config for comparison, generates with every
checkpoint at those energies, and prints per energy, from qcalo.metrics on the reduced view:
KL of the normalised mean profile, the largest relative error of a pixel mean, the relative
error of the total-energy spread, per-pixel W1, the mean-total-energy error and the
correlation-matrix MSE, with the issue's pass marks (KL <= 0.01, pixel means <= 10 %,
spread <= 20 %) and the reference's own noise floor (two disjoint held-out halves).

    python bench/quantum_quality.py --runs runs/quantum [--checkpoint best] [--n 2000] [--on-qiskit]

With --on-qiskit the first run's checkpoint also generates on qiskit.aer with 1024 shots, and
with 1024 shots and the noise model of fake_torino: what shots and device noise cost a
generator trained on an exact simulator.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import untrained_twin

from qcalo.data.dataset import ShowerData, open_showers
from qcalo.data.simulate import simulate_file
from qcalo.data.views import View
from qcalo.generate import generate_file
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import compare
from qcalo.metrics.observables import compute_features

ENERGIES = (10.0, 50.0, 100.0)
ON_QISKIT = {
    "aer_shots": ["device.name=qiskit.aer", "device.shots=1024"],
    "aer_shots_noise": ["device.name=qiskit.aer", "device.shots=1024", "device.noise_model=fake_torino"],
}
COLUMNS = [  # (metric, header, pass mark or None)
    ("kl_shape_{a}", "KL shape", 0.01),
    ("max_re_pixel_mean_{a}", "max pixel-mean err", 0.10),
    ("re_spread_sampling_fraction", "spread err", 0.20),
    ("mre_deposited_energy", "total E err", None),
    ("w1_pixels_{a}", "W1 pixels", None),
    ("mse_corr_longitudinal", "corr MSE", None),
]


def table(name: str, res: dict, axis: str) -> tuple[list[str], bool]:
    lines, ok = [], True
    for k, e in enumerate(ENERGIES):
        cells = []
        for metric, _, mark in COLUMNS:
            v = res[metric.format(a=axis)]["per_bin"][k]
            good = mark is None or v <= mark
            ok &= good
            cells.append(f"{v:>10.4f}{'' if mark is None else (' ok' if good else ' NO')}")
        lines.append(f"{name:26}{e:>6.0f}" + "".join(f"{c:>22}" for c in cells))
    return lines, ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders of qcalo.train")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--out", type=Path, default=Path("quality_quantum"))
    p.add_argument("--n", type=int, default=2000, help="held-out showers per energy")
    p.add_argument("--on-qiskit", action="store_true", help="also generate on Aer, with shots and noise")
    p.add_argument("--seed", type=int, default=525252)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    energies = np.repeat(ENERGIES, args.n)
    ref_path = simulate_file(args.out / "heldout.h5", energies, args.seed, progress=False)
    cfg = json.loads((args.runs[0] / "config.json").read_text())
    view = View.parse(cfg["view"])
    ref_data = open_showers(ref_path)
    ref = compute_features(ref_data, view=view)
    bins = EnergyBins.from_energies(ref.energy)
    axis = ref.geometry.axes[0]

    # the reference against itself: halves of the held-out sample (same energies, disjoint)
    half = np.zeros(len(energies), bool)
    half[np.random.default_rng(0).permutation(len(energies))[: len(energies) // 2]] = True
    floor = compare(ref.subset(half), ref.subset(~half), bins, classifier=False)

    checkpoints = {run.name: run / f"{args.checkpoint}.pt" for run in args.runs}
    checkpoints = {name: (ckpt, []) for name, ckpt in checkpoints.items()}
    if args.on_qiskit:
        first = next(iter(checkpoints))
        for device, sets in ON_QISKIT.items():
            checkpoints[f"{first} {device}"] = (checkpoints[first][0], sets)
    checkpoints["untrained"] = (untrained_twin(args.runs[0], args.out / "untrained"), [])
    header = f"{'':26}{'E/GeV':>6}" + "".join(f"{h:>22}" for _, h, _ in COLUMNS)
    print(f"\nheld-out: {args.n} showers at each of {ENERGIES} GeV, view {view.spec()}\n{header}")
    print("\n".join(table("reference halves (floor)", floor, axis)[0]))
    for name, (ckpt, sets) in checkpoints.items():
        t0 = time.perf_counter()
        out = generate_file(
            ckpt, energies, args.out / f"{name.replace(' ', '_')}.h5", seed=1, progress=False, sets=sets
        )
        took = time.perf_counter() - t0
        with open_showers(out) as data:
            cand = compute_features(ShowerData.from_arrays(*data.read(), data.geometry))
        lines, ok = table(name, compare(ref, cand, bins, classifier=False), axis)
        verdict = "all pass marks met" if ok else "pass marks missed"
        print(
            "\n".join(lines) + f"\n{'':26}{verdict}; generation {1000 * took / len(energies):.2f} ms/shower"
        )


if __name__ == "__main__":
    main()
