"""One quantum generator, every device: only the config's `device` entry changes.

Trains the default quantum model briefly on default.qubit (exact, backprop), then generates the
same held-out energies with that checkpoint on
  - default.qubit (exact),
  - qiskit.aer with 1024 shots,
  - qiskit.aer with 1024 shots and the noise model of a fake IBM backend,
  - qiskit.remote on that fake backend (the Runtime's local emulation of the device),
  - qiskit.remote on a real IBM backend, with --ibm-backend NAME and an account (saved with
    QiskitRuntimeService.save_account or QISKIT_IBM_TOKEN),
and prints how the metrics of qcalo.metrics degrade with shots and noise (the noise narrows the
total energy's spread by about a third; `python -m qcalo.train --config
configs/quantum_aer_noisy.yaml` refits the read-out on the noisy device to undo it, README).
On the command line the same swap is one option:
    python -m qcalo.generate --checkpoint CKPT --energies 10 50 100 --n 500 --out gen.h5 \\
        --set device.name=qiskit.aer device.shots=1024 device.noise_model=fake_torino

    python examples/quantum_devices.py [--checkpoint runs/quantum/best.pt] [--steps 600] [--n 500]
    python examples/quantum_devices.py --quick      # a few steps on 300 showers: the mechanics only
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from qcalo.data.builtin import builtin_dataset
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.data.simulate import sample_energies, simulate_file
from qcalo.data.views import View
from qcalo.generate import generate_file
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import compare
from qcalo.metrics.observables import compute_features
from qcalo.train import main as train_main

ENERGIES = (10.0, 50.0, 100.0)
SHOWN = {  # metric -> header (the quantum issue's pass marks: KL <= 0.01, pixel means <= 10 %)
    "kl_shape_z": "KL shape",
    "max_re_pixel_mean_z": "worst pixel mean",
    "re_spread_sampling_fraction": "spread err",
    "w1_pixels_z": "W1 pixels",
}


def devices(backend: str, ibm_backend: str | None) -> dict[str, list[str]]:
    aer = ["device.name=qiskit.aer", "device.shots=1024"]
    remote = ["device.name=qiskit.remote", "device.shots=1024"]
    out = {
        "default.qubit (exact)": [],
        "qiskit.aer, 1024 shots": aer,
        f"qiskit.aer, shots + {backend} noise": [*aer, f"device.noise_model={backend}"],
        f"qiskit.remote, {backend}": [*remote, f"device.backend={backend}"],
    }
    if ibm_backend:  # the token comes from the saved account or QISKIT_IBM_TOKEN, never from here
        out[f"qiskit.remote, {ibm_backend}"] = [*remote, f"device.backend={ibm_backend}"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="a quantum checkpoint of qcalo.train")
    p.add_argument("--out-dir", type=Path, default=Path("runs/devices_example"))
    p.add_argument("--steps", type=int, default=600, help="training steps on default.qubit")
    p.add_argument("--n", type=int, default=500, help="held-out showers per energy")
    p.add_argument("--backend", default="fake_torino", help="fake backend for noise and qiskit.remote")
    p.add_argument("--ibm-backend", default=None, help="also run on this real IBM backend (needs an account)")
    p.add_argument("--quick", action="store_true", help="tiny data, a few steps: for tests")
    args = p.parse_args()
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    n = 40 if args.quick else args.n

    # 1. A checkpoint trained on the exact simulator (unless given).
    ckpt = args.checkpoint
    if ckpt is None:
        if args.quick:
            energies = sample_energies(300, np.random.default_rng(0), (2.0, 500.0))
            data = simulate_file(out / "train.h5", energies, 0, progress=False)
        else:
            data = builtin_dataset()
        run = out / "quantum_run"
        sets = ["val_showers=60", "val_scan_showers=20", "batch_size=32"] if args.quick else []
        steps = 4 if args.quick else args.steps
        t0 = time.perf_counter()
        argv = ["--generator", "quantum", "--data", str(data), "--out", str(run), "--quiet"]
        train_main([*argv, "--max-steps", str(steps), *(["--set", *sets] if sets else [])])
        print(f"trained {steps} steps on default.qubit in {time.perf_counter() - t0:.0f} s")
        ckpt = run / "best.pt"

    # 2. Held-out showers (a seed training never saw), reduced to the generator's view.
    energies = np.repeat(ENERGIES, n)
    ref_path = simulate_file(out / "heldout.h5", energies, 777, progress=False)
    ref = compute_features(open_showers(ref_path), view=View.parse("longitudinal:8"))
    bins = EnergyBins.from_energies(ref.energy)

    # 3. The same checkpoint on every device: only `--set device.*` changes.
    print(f"\n{n} held-out showers at each of {ENERGIES} GeV, checkpoint {ckpt}")
    print(f"{'device':38}{'E/GeV':>6}" + "".join(f"{h:>18}" for h in SHOWN.values()) + f"{'ms/shower':>11}")
    for i, (name, sets) in enumerate(devices(args.backend, args.ibm_backend).items()):
        t0 = time.perf_counter()
        path = generate_file(ckpt, energies, out / f"generated_{i}.h5", seed=1, progress=False, sets=sets)
        ms = f"{1000 * (time.perf_counter() - t0) / len(energies):.2f}"
        with open_showers(path) as data:
            cand = compute_features(ShowerData.from_arrays(*data.read(), data.geometry))
        res = compare(ref, cand, bins, classifier=False)
        for k, e in enumerate(ENERGIES):
            cells = "".join(f"{res[m]['per_bin'][k]:>18.4f}" for m in SHOWN)
            print(f"{name if k == 0 else '':38}{e:>6.0f}{cells}{ms if k == 0 else '':>11}", flush=True)


if __name__ == "__main__":
    main()
