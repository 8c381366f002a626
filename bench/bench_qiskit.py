"""Qiskit execution: the batched sweep (qcalo.quantum.sweep) against the pennylane-qiskit path.

One run, side by side: the time of one training step (`Trainer.train_step`: discriminator on a
real and a fake batch, one generator step with parameter-shift gradients), the circuits and
the jobs (sweeps) it took, on
  - 8 qubits (the angle ansatz, 7 pixels + the energy qubit, 2 layers: 32 trainable weights
    RY, RZ, plus the trainable noise scales and energy encodings: every one of the 56 gate
    angles is shifted, 113 circuits per event): qiskit.aer exact (statevector) and with shots,
    the sweep and the plugin path;
  - the default model (born ansatz, 4 qubits, 4 layers, 52 angles): qiskit.aer with shots and
    the noise model of a fake IBM backend (sweep, SPSA, plugin), and qiskit.remote on that fake
    backend (SamplerV2 jobs, counted; and as configs/quantum_ibm.yaml runs it: SPSA, the
    generator step reusing the discriminator's fakes, one job per step);
  - 8 qubits with shots and that noise, with a CNOT chain instead of the ring (the chain maps
    onto the heavy-hex coupling map without SWAPs: 8 physical qubits; the ring needs 12, ~4 s per
    12-qubit noisy circuit here): SPSA, and parameter-shift.
The plugin path and the noisy 8-qubit parameter-shift sweep are timed on a small batch
(--plugin-batch) and their per-event time scaled to the batch (stated as such: the plugin runs
one circuit after another, the sweep's cost is its circuit count). Then the sweep's outputs and
gradients against default.qubit's on one batch (exact: max difference; shots: correlation).

    python bench/bench_qiskit.py [--batch 64] [--plugin-batch 1] [--noise-model fake_torino]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from qcalo.config import load_config
from qcalo.train import Trainer

EIGHT_QUBITS = ["ansatz=angle", "view=longitudinal:7", "layers=2"]


def one_step(sets: list[str], batch: int, steps: int = 1) -> dict[str, float]:
    """The fastest of `steps` training steps after a first one (which transpiles)."""
    cfg = load_config("quantum", sets=[*sets, f"batch_size={batch}", "val_showers=20"])
    cfg["out"] = "/tmp/qcalo-bench-qiskit"
    trainer = Trainer(cfg, progress=False)
    cells, energy = next(iter(trainer.stream))
    qdev = trainer.g.qdev
    t0 = time.perf_counter()
    trainer.train_step(cells, energy)
    first = time.perf_counter() - t0
    sweep = qdev.sweep
    jobs0, circuits0 = (sweep.jobs, sweep.circuits) if sweep else (0, 0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        trainer.train_step(cells, energy)
        times.append(time.perf_counter() - t0)
    out = {"s": min(times), "first": first, "wires": trainer.plugin.layout.n_wires}
    if sweep:
        out["jobs"] = (sweep.jobs - jobs0) / steps
        out["circuits"] = (sweep.circuits - circuits0) / steps
    return out


def agreement(sets: list[str], batch: int) -> tuple[float, float, float]:
    """(max |output diff|, max |grad diff|, grad correlation) of a device vs default.qubit."""
    from qcalo.quantum.ansatz import layout
    from qcalo.quantum.devices import make_device
    from qcalo.quantum.generator import QuantumGenerator

    res = []
    for extra in ([], sets):
        cfg = load_config("quantum", sets=[*EIGHT_QUBITS, *extra])
        lay = layout(cfg["ansatz"], 7)
        g = QuantumGenerator(lay, make_device(cfg, lay.n_wires, seed=1), 1, 2, "ring", True, 0.5)
        gen = torch.Generator().manual_seed(0)
        f = torch.linspace(-1, 1, batch)[:, None]
        z = torch.cat([torch.randn(batch, g.n_noise, generator=gen), f], 1)
        out = g(z)
        (out * torch.arange(1, out.shape[1] + 1)).sum().backward()
        res.append((out.detach(), torch.cat([p.grad.flatten() for p in g.parameters()])))
    (o1, g1), (o2, g2) = res
    corr = torch.corrcoef(torch.stack([g1, g2]))[0, 1].item()
    return (o1 - o2).abs().max().item(), (g1 - g2).abs().max().item(), corr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--plugin-batch",
        type=int,
        default=1,
        help="batch of the slow rows (plugin path, noisy 8q parameter-shift)",
    )
    p.add_argument("--noise-model", default="fake_torino", help="fake backend (>= 8 qubits)")
    p.add_argument("--shots", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-plugin", action="store_true", help="only the batched rows")
    p.add_argument(
        "--only", default="", help="only the rows whose name contains this (e.g. '8q aer shots+noise')"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    aer, shots = "device.name=qiskit.aer", f"device.shots={args.shots}"
    noise = f"device.noise_model={args.noise_model}"
    remote = ["device.name=qiskit.remote", f"device.backend={args.noise_model}", shots]
    qnode, e = "device.execution=qnode", EIGHT_QUBITS
    linear, spsa = "entangler=linear", "device.diff_method=spsa"
    rows = [
        ("8q default.qubit backprop", [*e], args.batch),
        ("8q aer exact, sweep", [*e, aer], args.batch),
        ("8q aer exact, plugin", [*e, aer, qnode], args.plugin_batch),
        ("8q aer shots, sweep", [*e, aer, shots], args.batch),
        ("8q aer shots, plugin", [*e, aer, shots, qnode], args.plugin_batch),
        # noisy 8 qubits: a CNOT chain maps onto heavy-hex without SWAPs (8 physical qubits; the
        # ring needs 12, and a 12-qubit density matrix costs ~4 s per circuit here)
        ("8q aer shots+noise, spsa", [*e, aer, shots, noise, linear, spsa], args.batch),
        ("8q aer shots+noise, sweep", [*e, aer, shots, noise, linear], args.plugin_batch),
        ("4q default.qubit backprop", [], args.batch),
        ("4q aer shots+noise, sweep", [aer, shots, noise], args.batch),
        ("4q aer shots+noise, spsa", [aer, shots, noise, spsa], args.batch),
        ("4q aer shots+noise, plugin", [aer, shots, noise, qnode], args.plugin_batch),
        ("4q remote fake, sweep", remote, args.batch),
        ("4q remote fake, spsa+shared", [*remote, spsa, "share_fakes=true"], args.batch),
    ]
    if args.skip_plugin:
        rows = [r for r in rows if "plugin" not in r[0]]
    rows = [r for r in rows if args.only in r[0]]
    print(
        f"one training step, batch {args.batch}, {args.shots} shots where sampled, noise of "
        f"{args.noise_model}, {args.threads} threads; 8q: angle ansatz, 2 layers; 4q: the default model"
    )
    head = f"{'path':28}{'batch':>6}{'s/step':>9}{'s/step @' + str(args.batch):>13}"
    print(head + f"{'circuits':>10}{'jobs':>6}{'1st step s':>12}")
    for name, sets, batch in rows:
        r = one_step(sets, batch)
        scaled = r["s"] * args.batch / batch
        note = "" if batch == args.batch else " (scaled)"
        circuits = f"{r['circuits']:>10.0f}{r['jobs']:>6.0f}" if "jobs" in r else f"{'':>10}{'':>6}"
        line = f"{name:28}{batch:>6}{r['s']:>9.2f}{scaled:>13.2f}{circuits}{r['first']:>12.2f}{note}"
        print(line, flush=True)
    print("\nagreement with default.qubit on 8 events (outputs, gradients of every parameter):")
    for name, sets in (("aer exact, sweep", [aer]), (f"aer {args.shots} shots, sweep", [aer, shots])):
        do, dg, corr = agreement(sets, 8)
        print(f"{name:26} max |d output| {do:.2e}  max |d grad| {dg:.2e}  grad correlation {corr:.4f}")


if __name__ == "__main__":
    main()
