"""int8 inference: export a Conv2D generator to ONNX, quantize it with the accuracy guard, generate
with onnxruntime, and compare speed and accuracy with fp32.

    python examples/int8_inference.py [--checkpoint runs/c2d/best.pt] [--out-dir runs/int8_example]
    python examples/int8_inference.py --quick        # a 3-step model on 300 showers: the mechanics only

Without --checkpoint it first trains a Conv2D generator on the built-in data for --train-minutes.
The same three steps on the command line:
    python -m qcalo.export --checkpoint CKPT --out conv2d.onnx --int8
    python -m qcalo.generate --onnx conv2d.int8.onnx --energies 10 50 100 --n 500 --out gen.h5
    python -m qcalo.evaluate --reference heldout.h5 --candidate int8=gen.h5 --out report/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from qcalo.data.builtin import builtin_dataset
from qcalo.data.dataset import open_showers
from qcalo.data.simulate import sample_energies, simulate_file
from qcalo.export import export_onnx, quantize_int8
from qcalo.generate import generate_file
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import compare
from qcalo.metrics.observables import compute_features
from qcalo.train import main as train_main

ENERGIES = (10.0, 50.0, 100.0)
SHOWN = ("mse_shapes", "mre_sampling_fraction", "kl_shape_z")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="a conv2d or conv3d checkpoint")
    p.add_argument("--out-dir", type=Path, default=Path("runs/int8_example"))
    p.add_argument("--train-minutes", type=float, default=5.0)
    p.add_argument("--n", type=int, default=500, help="showers per energy to generate and compare")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny data and model, for tests")
    args = p.parse_args()
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    n = 50 if args.quick else args.n

    # 0. Data and a checkpoint (trained here unless given).
    if args.quick:
        data_path = simulate_file(
            out / "train.h5", sample_energies(300, np.random.default_rng(0), (2.0, 500.0)), 0, progress=False
        )
    else:
        data_path = builtin_dataset()
    ckpt = args.checkpoint
    if ckpt is None:
        budget = ["--max-steps", "3"] if args.quick else ["--set", f"time_limit_min={args.train_minutes}"]
        run = out / "conv2d_run"
        sets = ["val_showers=60", "batch_size=16"] if args.quick else []
        train_main(
            ["--generator", "conv2d", "--data", str(data_path), "--out", str(run), "--quiet", *budget]
            + (["--set", *sets] if sets else [])
        )
        ckpt = run / "best.pt"

    # 1. Export: one .onnx file, checked against torch before it is written.
    fp32 = export_onnx(ckpt, out / "generator.onnx")
    print(
        f"exported {fp32['path']}: {fp32['bytes'] / 1e6:.2f} MB, onnxruntime vs torch max relative "
        f"deviation {fp32['check_max_rel_deviation']:.1e}"
    )

    # 2. int8 with the accuracy guard (calibrated on energies from the data, judged on showers
    #    calibration never saw; groups that cost accuracy stay fp32).
    q = quantize_int8(
        out / "generator.onnx",
        out / "generator.int8.onnx",
        open_showers(data_path),
        calibration_showers=64 if args.quick else 256,
        guard_showers=100 if args.quick else 1000,
        threads=args.threads,
    )
    print(
        f"int8 {q['path']}: {q['bytes'] / 1e6:.2f} MB; "
        f"node groups kept in fp32: {list(q['fp32_groups']) or 'none'}"
    )

    # 3. Generate with both models from the same seed, and a held-out reference at the same energies.
    energies = np.repeat(ENERGIES, n)
    ref_path = simulate_file(out / "heldout.h5", energies, seed=99, progress=False)
    ref = compute_features(open_showers(ref_path))
    bins = EnergyBins.from_energies(ref.energy)
    rows = {}
    for name, model in (("onnx fp32", out / "generator.onnx"), ("onnx int8", out / "generator.int8.onnx")):
        t0 = time.perf_counter()
        gen = generate_file(
            model, energies, out / f"gen_{name[-4:]}.h5", seed=1, progress=False, threads=args.threads
        )
        ms = 1e3 * (time.perf_counter() - t0) / len(energies)
        res = compare(ref, compute_features(open_showers(gen)), bins, classifier=False)
        rows[name] = (ms, {m: res[m]["overall"] for m in SHOWN})

    # 4. Speed and accuracy, fp32 vs int8.
    print(f"\n{len(energies)} showers at {', '.join(f'{e:g}' for e in ENERGIES)} GeV, {args.threads} threads")
    print(f"{'':12}{'ms/shower':>12}" + "".join(f"{m:>24}" for m in SHOWN))
    for name, (ms, m) in rows.items():
        print(f"{name:12}{ms:>12.3f}" + "".join(f"{m[k]:>24.4g}" for k in SHOWN))
    (ms32, m32), (ms8, m8) = rows["onnx fp32"], rows["onnx int8"]
    print(f"{'int8/fp32':12}{ms8 / ms32:>12.3f}" + "".join(f"{m8[k] / m32[k]:>24.3f}" for k in SHOWN))


if __name__ == "__main__":
    main()
