"""Classical vs quantum on one yardstick: the 8-pixel longitudinal profile + total energy.

On the built-in data set, with the same training/validation split and seed:
  - trains the quantum generator (configs/quantum.yaml: default.qubit, 70 parameters);
  - trains its classical twin for the same number of steps: an MLP of 69 parameters in the
    circuit's place, with the same representation, discriminator and losses (`--generator mlp`);
  - takes a full-resolution Conv2D (or Conv3D) generator, trained here for --classical-minutes
    unless --classical-checkpoint is given, and reduces its showers to the same view.
Each generates the same held-out energies (showers training never saw); qcalo.metrics compares
them with the reference reduced the same way, every number beside the reference's own noise
floor (two disjoint halves of it). Prints the table, parameter counts, steps trained and the
step of the checkpoint used (each run's best by its validation score), training wall times;
writes results.json and the plots of qcalo.evaluate (profiles, total energy) into --out-dir.

    python examples/compare_classical_quantum.py [--quantum-checkpoint runs/quantum/best.pt]
        [--classical-checkpoint runs/conv2d/best.pt] [--classical-minutes 10] [--n 1000]
    python examples/compare_classical_quantum.py --quick     # a few steps on 300 showers: the mechanics only

The same comparison by hand: `python -m qcalo.train --generator mlp`, `qcalo.generate` with each
checkpoint, then `python -m qcalo.evaluate --view longitudinal:8 --reference ... --candidate ...`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from qcalo.checkpoint import load_checkpoint, plugin_from_checkpoint
from qcalo.data.builtin import builtin_dataset
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.data.simulate import sample_energies, simulate_file
from qcalo.data.views import View
from qcalo.generate import generate_file
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import with_noise_floor
from qcalo.metrics.observables import compute_features
from qcalo.metrics.plots import make_plots
from qcalo.train import main as train_main

ENERGIES = (10.0, 50.0, 100.0)
VIEW = View.parse("longitudinal:8")
COLUMNS = {  # metric -> header
    "kl_shape_z": "KL profile",
    "mse_shape_z": "MSE profile",
    "w1_pixels_z": "W1 pixels",
    "mre_deposited_energy": "total E err",
    "re_spread_sampling_fraction": "spread err",
}
QUICK_SETS = ["val_showers=60", "val_scan_showers=20", "batch_size=32"]


def train(generator: str, data: Path, run: Path, budget: list[str], quick: bool) -> tuple[Path, float]:
    """Train one generator with qcalo.train; (best checkpoint, wall seconds)."""
    argv = ["--generator", generator, "--data", str(data), "--out", str(run), "--quiet", *budget]
    sets = QUICK_SETS + (["batch_size=16", "val_scan_showers=0"] if generator.startswith("conv") else [])
    t0 = time.perf_counter()
    train_main(argv + (["--set", *sets] if quick else []))
    return run / "best.pt", time.perf_counter() - t0


def describe(ckpt: Path) -> dict:
    """Generator name, parameter count, steps trained (its run's last checkpoint, when beside
    it) and the step of this checkpoint."""
    state = load_checkpoint(ckpt)
    _, g = plugin_from_checkpoint(state)
    last = ckpt.with_name("last.pt")
    steps = load_checkpoint(last)["step"] if last.is_file() else state["step"]
    return {
        "generator": state["config"]["generator"],
        "parameters": sum(p.numel() for p in g.parameters()),
        "steps": int(steps),
        "checkpoint_step": int(state["step"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quantum-checkpoint", type=Path, default=None, help="e.g. runs/quantum/best.pt")
    p.add_argument("--classical-checkpoint", type=Path, default=None, help="a conv2d or conv3d checkpoint")
    p.add_argument(
        "--classical", default="conv2d", choices=["conv2d", "conv3d"], help="trained if no checkpoint"
    )
    p.add_argument("--classical-minutes", type=float, default=10.0, help="its CPU training budget")
    p.add_argument("--n", type=int, default=1000, help="held-out showers per energy")
    p.add_argument("--out-dir", type=Path, default=Path("runs/compare_example"))
    p.add_argument("--quick", action="store_true", help="tiny data, a few steps: for tests")
    args = p.parse_args()
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    n = 60 if args.quick else args.n

    if args.quick:
        energies = sample_energies(300, np.random.default_rng(0), (2.0, 500.0))
        data = simulate_file(out / "train.h5", energies, 0, progress=False)
    else:
        data = builtin_dataset()

    # 1. Checkpoints: the quantum generator, its twin for as many steps, a full-resolution GAN.
    runs: dict[str, dict] = {}
    ckpt = args.quantum_checkpoint
    took = None
    if ckpt is None:
        ckpt, took = train(
            "quantum", data, out / "quantum_run", ["--max-steps", "4"] if args.quick else [], args.quick
        )
    runs["quantum"] = {"checkpoint": ckpt, "train_s": took}
    steps = describe(ckpt)["steps"]
    twin, took = train("mlp", data, out / "mlp_run", ["--max-steps", str(steps)], args.quick)
    runs["mlp twin"] = {"checkpoint": twin, "train_s": took}
    ckpt, took = args.classical_checkpoint, None
    if ckpt is None:
        budget = ["--max-steps", "2"] if args.quick else ["--set", f"time_limit_min={args.classical_minutes}"]
        ckpt, took = train(args.classical, data, out / f"{args.classical}_run", budget, args.quick)
    runs[describe(ckpt)["generator"]] = {"checkpoint": ckpt, "train_s": took}

    # 2. Held-out showers, every sample reduced to the same view.
    energies = np.repeat(ENERGIES, n)
    ref_path = simulate_file(out / "heldout.h5", energies, 777, progress=False)
    ref = compute_features(open_showers(ref_path), view=VIEW)
    bins = EnergyBins.from_energies(ref.energy)
    cands = {}
    for name, run in runs.items():
        run.update(describe(run["checkpoint"]))
        t0 = time.perf_counter()
        gen_path = out / f"gen_{run['generator']}.h5"
        path = generate_file(run["checkpoint"], energies, gen_path, seed=1, progress=False)
        run["ms_per_shower"] = 1000 * (time.perf_counter() - t0) / len(energies)
        with open_showers(path) as g:
            cands[name] = compute_features(ShowerData.from_arrays(*g.read(), g.geometry), view=VIEW)

    # 3. One table from qcalo.metrics, with the reference's noise floor.
    res = with_noise_floor(ref, cands, bins, splits=3 if args.quick else 5, classifier_splits=0)
    print(f"\n{n} held-out showers at each of {ENERGIES} GeV, all reduced to {VIEW.spec()}")
    print(f"{'model':14}{'params':>9}{'steps':>7}{'used':>7}{'train s':>9}{'ms/shower':>11}")
    for name, run in runs.items():
        took = "given" if run["train_s"] is None else f"{run['train_s']:.0f}"
        counts = f"{run['parameters']:>9}{run['steps']:>7}{run['checkpoint_step']:>7}"
        print(f"{name:14}{counts}{took:>9}{run['ms_per_shower']:>11.3f}")
    print(f"\n{'E/GeV':>5}  {'model':22}" + "".join(f"{h:>13}" for h in COLUMNS.values()))
    for k, e in enumerate(ENERGIES):
        for name in ["floor", *runs]:
            cells = "".join(f"{res[name][m]['per_bin'][k]:>13.4f}" for m in COLUMNS)
            label = "reference floor" if name == "floor" else name
            print(f"{f'{e:g}' if name == 'floor' else '':>5}  {label:22}{cells}")
    plots = make_plots(ref, cands, bins, out / "plots")
    summary = {
        "energies": list(ENERGIES),
        "showers_per_energy": n,
        "view": VIEW.spec(),
        "models": {k: {**v, "checkpoint": str(v["checkpoint"])} for k, v in runs.items()},
        "metrics": {name: {m: res[name][m]["per_bin"] for m in COLUMNS} for name in ["floor", *runs]},
        "plots": [str(p) for p in plots],
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"\nplots in {out / 'plots'}; numbers in {out / 'results.json'}")


if __name__ == "__main__":
    main()
