"""Does a short CPU training visibly learn? Conv3D and Conv2D against held-out built-in showers.

Given run folders of `python -m qcalo.train` (e.g. trained with `--set time_limit_min=30`), this
script, in one run:
  1. simulates held-out showers (a seed the training never saw): flat 2-500 GeV, and 10/50/100 GeV;
  2. writes an untrained checkpoint of each architecture (same config, step 0) for comparison;
  3. generates with every checkpoint for the held-out energies;
  4. prints, at 10, 50 and 100 GeV, the sampling fraction and shower maximum of data and generators;
  5. runs the qcalo.evaluate comparison on the flat sample and prints its table.

    python bench/classical_quality.py --runs runs/conv3d runs/conv2d --out quality/ [--n 2000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import untrained_twin

from qcalo.checkpoint import load_checkpoint
from qcalo.data.dataset import open_showers
from qcalo.data.simulate import sample_energies, simulate_file
from qcalo.evaluate import main as evaluate_main
from qcalo.generate import generate_file
from qcalo.metrics.observables import shower_summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders of qcalo.train")
    p.add_argument("--out", type=Path, default=Path("quality"))
    p.add_argument("--n", type=int, default=2000, help="held-out showers, flat 2-500 GeV")
    p.add_argument("--n-fixed", type=int, default=300, help="held-out showers per fixed energy")
    p.add_argument("--seed", type=int, default=424242)
    p.add_argument("--torch-device", default="cpu", help="where the checkpoints generate (cpu, cuda)")
    args = p.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    flat = simulate_file(
        out / "heldout_flat.h5",
        sample_energies(args.n, np.random.default_rng(args.seed), (2.0, 500.0)),
        args.seed,
        progress=False,
    )
    fixed_e = np.repeat([10.0, 50.0, 100.0], args.n_fixed)
    fixed = simulate_file(out / "heldout_fixed.h5", fixed_e, args.seed + 1, progress=False)

    checkpoints = {}
    generators = [load_checkpoint(run / "last.pt")["config"]["generator"] for run in args.runs]
    for run, generator in zip(args.runs, generators, strict=True):
        # two runs of one generator (e.g. two settings side by side) keep their folder names
        name = generator if generators.count(generator) == 1 else f"{generator}_{run.name}"
        best = run / "best.pt" if (run / "best.pt").exists() else run / "last.pt"
        checkpoints[name] = best
        checkpoints[f"{name}_untrained"] = untrained_twin(run, out / f"{name}_untrained", args.torch_device)

    rows = {"data": shower_table(fixed)}
    for name, ckpt in checkpoints.items():
        generate_file(
            ckpt, fixed_e, out / f"{name}_fixed.h5", seed=1, progress=False, device=args.torch_device
        )
        rows[name] = shower_table(out / f"{name}_fixed.h5")
        generate_file(
            ckpt,
            open_showers(flat).energy,
            out / f"{name}_flat.h5",
            seed=2,
            progress=False,
            device=args.torch_device,
        )
    print("\nsampling fraction (deposited / primary) and peak layer, held-out data vs generated:")
    print(f"{'':22}" + "".join(f"{e:>22.0f} GeV" for e in (10, 50, 100)))
    for name, table in rows.items():
        cells = "".join(f"{t['sum_over_e']:>14.4f} /{t['peak_layer']:>6.2f}    " for t in table)
        print(f"{name:22}{cells}")
    print("\nshower maximum (layer): argmax of the mean profile / gamma-function fit / mean depth:")
    for name, table in rows.items():
        cells = "".join(
            f"{t['peak_layer']:>8.2f} /{t['gamma_maximum']:>6.2f} /{t['mean_depth']:>6.2f}" for t in table
        )
        print(f"{name:22}{cells}")
    # a generator can meet the sampling fraction with energy far from the shower core (measured:
    # Conv3D runs, in the volume's boundary planes); the width and cells above zero show it
    print("\ntransverse width (rms along x, cells) / cells above zero:")
    for name, table in rows.items():
        cells = "".join(f"{t['x_width']:>14.2f} /{t['cells_above_zero']:>6.0f}    " for t in table)
        print(f"{name:22}{cells}")
    for name, table in rows.items():
        if name != "data":
            ratios = [t["sum_over_e"] / d["sum_over_e"] for t, d in zip(table, rows["data"], strict=True)]
            print(f"{name:22} generated / data sampling fraction: " + ", ".join(f"{r:.3f}" for r in ratios))
    print("\nqcalo.evaluate on the flat held-out sample:")
    cands = [f"{name}={out / f'{name}_flat.h5'}" for name in checkpoints]
    evaluate_main(
        [
            "--reference",
            str(flat),
            *sum((["--candidate", c] for c in cands), []),
            "--out",
            str(out / "report"),
            "--cell-sample",
            "2000",
        ]
    )


def shower_table(path: Path) -> list[dict]:
    cells, energy = open_showers(path).read()
    from qcalo.data.geometry import ecal_3dgan

    return [
        shower_summary(cells[energy == e], energy[energy == e], ecal_3dgan()) for e in (10.0, 50.0, 100.0)
    ]


if __name__ == "__main__":
    main()
