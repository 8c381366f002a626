"""Time of one quantum-GAN training step on every PennyLane device, and its growth with qubits.

One step = the loop's `train_step` (discriminator on a real and a fake batch, one generator
step with its gradients), on a batch of built-in showers, default ansatz unless told. Prints the
median of repeated steps per device and method; parameter-shift devices are slow (Qiskit
through the plugin transpiles every circuit), so they run a smaller batch (--slow-batch) and
the table gives the time per shower too. Then the fastest exact simulator at 3, 7, 11 and 15 pixels (angle
ansatz: qubits = pixels + 1 energy qubit, so 4, 8, 12 and 16 qubits).

    python bench/bench_quantum.py [--threads 2] [--batch 64] [--repeats 5] [--slow-batch 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from qcalo.config import load_config
from qcalo.train import Trainer


def step_time(sets: list[str], batch: int, repeats: int, warmup: int = 1) -> tuple[float, int]:
    cfg = load_config("quantum", sets=[*sets, f"batch_size={batch}", "val_showers=20"])
    cfg["out"] = "/tmp/qcalo-bench-quantum"
    trainer = Trainer(cfg, progress=False)
    cells, energy = next(iter(trainer.stream))
    times = []
    for k in range(warmup + repeats):
        t0 = time.perf_counter()
        trainer.train_step(cells, energy)
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), trainer.plugin.layout.n_wires


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--slow-batch", type=int, default=2, help="batch for parameter-shift devices (slow)")
    p.add_argument("--ansatz", default="born", help="born (the default model) or angle")
    p.add_argument("--skip-qiskit", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    a = f"ansatz={args.ansatz}"
    runs = [
        ("default.qubit", "backprop", [a], args.batch),
        ("lightning.qubit", "adjoint", [a, "device.name=lightning.qubit"], args.batch),
        ("default.qubit", "parameter-shift", [a, "device.diff_method=parameter-shift"], args.slow_batch),
    ]
    if not args.skip_qiskit:  # through pennylane-qiskit; bench/bench_qiskit.py times batched execution
        q, plugin = args.slow_batch, ["device.execution=qnode", "device.name=qiskit.aer"]
        runs += [
            ("qiskit.aer (exact)", "parameter-shift", [a, *plugin], q),
            (
                "qiskit.aer shots=1024",
                "parameter-shift",
                [a, *plugin, "device.shots=1024"],
                q,
            ),
            (
                "qiskit.aer shots + noise",
                "parameter-shift",
                [a, *plugin, "device.shots=1024", "device.noise_model=fake_torino"],
                q,
            ),
        ]
    print(
        f"one training step, {args.ansatz} ansatz, 8 pixels, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'device':26}{'diff':>18}{'batch':>7}{'qubits':>8}{'s/step':>10}{'ms/shower':>11}")
    for name, diff, sets, batch in runs:
        full = batch == args.batch
        t, wires = step_time(sets, batch, args.repeats if full else 1, warmup=1 if full else 0)
        print(f"{name:26}{diff:>18}{batch:>7}{wires:>8}{t:>10.3f}{1000 * t / batch:>11.2f}", flush=True)
    print(
        f"\ndefault.qubit backprop, batch {args.batch}, angle ansatz (a qubit per pixel): growth with qubits"
    )
    print(f"{'pixels':>8}{'qubits':>8}{'s/step':>10}")
    for pixels in (3, 7, 11, 15):
        sets = ["ansatz=angle", f"view=longitudinal:{pixels}"]
        t, wires = step_time(sets, args.batch, max(1, args.repeats // 2))
        print(f"{pixels:>8}{wires:>8}{t:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
