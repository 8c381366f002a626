"""torch fp32 vs onnxruntime fp32 vs onnxruntime int8, Conv3D and Conv2D, side by side in one run.

For each architecture: exports the checkpoint (`qcalo.export`), quantizes it with the accuracy
guard, then prints time per shower at batch 1 and batch 128 (median of --repeats runs, --threads
threads), file sizes, peak memory (each engine measured in a fresh process: peak RSS over the
RSS after imports), and the physics distances of torch-fp32 / onnx-fp32 / onnx-int8 samples
(same noise) against held-out built-in showers; then the int8 / fp32 ratios and, given the time
per shower of a Monte Carlo reference (--mc-seconds-per-shower, e.g. Geant4 on your machine),
the speed-up over it, as the 3DGAN papers quote it.

    python bench/bench_onnx.py --checkpoint conv3d=runs/conv3d/best.pt conv2d=runs/conv2d/best.pt \
        [--threads 2] [--repeats 7] [--n 1000] [--mc-seconds-per-shower S]

Without --checkpoint, untrained (step 0) checkpoints stand in: timings and sizes hold for any
weights, the physics rows then only show that fp32 and int8 agree.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path

import numpy as np
import torch
from common import median_time

from qcalo.config import load_config
from qcalo.data.builtin import builtin_dataset
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.export import ExportedGenerator, export_onnx, quantize_int8
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import compare
from qcalo.metrics.observables import compute_features
from qcalo.onnx_generator import OnnxGenerator
from qcalo.plugins import gaussian_noise

ENGINES = ("torch fp32", "onnx fp32", "onnx int8")
METRICS = ("mse_shapes", "mre_sampling_fraction", "kl_shape_z", "w1_sampling_fraction")
BATCHES = (1, 128)


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, MB. Not ru_maxrss: a spawned process
    inherits that from its parent across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _runner(engine: str, model: str, threads: int):
    """(noise, energy) -> showers for one engine, loaded in this process."""
    if engine == "torch fp32":
        from qcalo.checkpoint import load_checkpoint, plugin_from_checkpoint

        torch.set_num_threads(threads)
        plugin, g = plugin_from_checkpoint(load_checkpoint(model))
        net = ExportedGenerator(plugin, g).eval()

        def run(noise, energy):
            with torch.no_grad():
                return net(torch.from_numpy(noise), torch.from_numpy(energy)).numpy()

        return run
    return OnnxGenerator(model, threads).run


def _time_engine(engine: str, model: str, noise_size: int, threads: int, repeats: int, queue) -> None:
    """In a fresh process: median seconds per shower at each batch size, and peak memory."""
    base = memory_mb("VmRSS")
    run = _runner(engine, model, threads)
    out = {}
    for batch in BATCHES:
        noise = gaussian_noise(batch, noise_size, torch.Generator().manual_seed(0)).numpy()
        energy = np.full(batch, 50.0, np.float32)
        out[batch] = median_time(lambda: run(noise, energy), repeats, lambda: None) / batch  # noqa: B023
    queue.put({"per_shower": out, "peak_mb": memory_mb("VmHWM") - base})


def time_engine(engine: str, model: str, noise_size: int, threads: int, repeats: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_time_engine, args=(engine, model, noise_size, threads, repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def untrained(name: str, out: Path) -> Path:
    from qcalo.train import untrained_checkpoint

    return untrained_checkpoint(load_config(name, sets=[f"out={out}"]))


def physics(ckpt: str, onnx32: Path, onnx8: Path, ref: ShowerData, threads: int) -> dict[str, dict]:
    """Distances of each engine's showers (same noise for all three) from the reference's."""
    energy = ref.energy.astype(np.float32)
    ref_f = compute_features(ref)
    bins = EnergyBins.from_energies(energy)
    noise_size = OnnxGenerator(onnx32).noise_size
    noise = gaussian_noise(len(energy), noise_size, torch.Generator().manual_seed(7)).numpy()
    out = {}
    for engine, model in zip(ENGINES, (ckpt, str(onnx32), str(onnx8)), strict=True):
        run = _runner(engine, model, threads)
        cells = np.concatenate(
            [run(noise[i : i + 128], energy[i : i + 128]) for i in range(0, len(energy), 128)]
        )
        res = compare(ref_f, compute_features(ShowerData.from_arrays(cells, energy, ref.geometry)), bins)
        out[engine] = {m: res[m]["overall"] for m in METRICS if m in res}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", nargs="+", default=[], metavar="NAME=CKPT", help="conv3d=... conv2d=...")
    p.add_argument("--out", type=Path, default=Path("bench_onnx"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=1000, help="held-out showers for the physics distances")
    p.add_argument("--mc-seconds-per-shower", type=float, default=None, help="Monte Carlo time per shower")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ckpts = dict(item.split("=", 1) for item in args.checkpoint)
    for name in ("conv3d", "conv2d"):
        if name not in ckpts:
            ckpts[name] = str(untrained(name, args.out / f"untrained_{name}"))
    data = open_showers(builtin_dataset())
    _, heldout = data.split(0.1)  # the training loop's default validation split
    heldout_cells, heldout_e = heldout.read(limit=args.n)
    ref = ShowerData.from_arrays(heldout_cells, heldout_e, data.geometry)

    rows = {}
    for name, ckpt in ckpts.items():
        onnx32, onnx8 = args.out / f"{name}.onnx", args.out / f"{name}.int8.onnx"
        fp = export_onnx(ckpt, onnx32)
        q = quantize_int8(onnx32, onnx8, data, threads=args.threads)
        print(
            f"{name}: {ckpt} (step {fp['step']}); int8 kept in fp32: {list(q['fp32_groups']) or 'none'}; "
            f"{'per-channel' if q['per_channel'] else 'per-tensor'} weights; quantization {q['seconds']} s"
        )
        sizes = {"torch fp32": Path(ckpt).stat().st_size, "onnx fp32": fp["bytes"], "onnx int8": q["bytes"]}
        models = {"torch fp32": ckpt, "onnx fp32": str(onnx32), "onnx int8": str(onnx8)}
        timing = {e: time_engine(e, models[e], fp["noise_size"], args.threads, args.repeats) for e in ENGINES}
        rows[name] = (sizes, timing, physics(ckpt, onnx32, onnx8, ref, args.threads))

    print(
        f"\n{args.threads} threads, median of {args.repeats}; "
        f"physics: {len(heldout_e)} held-out built-in showers"
    )
    head = f"{'model':8}{'engine':12}" + "".join(f"{f'ms/shower b{b}':>16}" for b in BATCHES)
    print(head + f"{'file MB':>10}{'peak MB':>10}" + "".join(f"{m:>24}" for m in METRICS))
    for name, (sizes, timing, phys) in rows.items():
        for e in ENGINES:
            t = timing[e]
            cells = "".join(f"{1e3 * t['per_shower'][b]:>16.3f}" for b in BATCHES)
            dist = "".join(f"{phys[e].get(m, float('nan')):>24.4g}" for m in METRICS)
            print(f"{name:8}{e:12}{cells}{sizes[e] / 2**20:>10.2f}{t['peak_mb']:>10.0f}{dist}")
        t32, t8 = timing["onnx fp32"]["per_shower"], timing["onnx int8"]["per_shower"]
        tt = timing["torch fp32"]["per_shower"]
        ratio = "  ".join(
            f"b{b}: int8 {t32[b] / t8[b]:.2f}x faster than onnx fp32, {tt[b] / t8[b]:.2f}x than torch"
            for b in BATCHES
        )
        print(
            f"{name:8}{'ratios':12}{ratio}; "
            f"int8 file {sizes['onnx fp32'] / sizes['onnx int8']:.2f}x smaller; "
            + ", ".join(
                f"{m} int8/fp32 {phys['onnx int8'][m] / phys['onnx fp32'][m]:.3f}" for m in METRICS[:2]
            )
        )
        if args.mc_seconds_per_shower:
            best = min(min(timing[e]["per_shower"].values()) for e in ENGINES)
            print(
                f"{name:8}{'vs MC':12}Monte Carlo {args.mc_seconds_per_shower:g} s/shower -> "
                + ", ".join(
                    f"{e} {args.mc_seconds_per_shower / timing[e]['per_shower'][128]:,.0f}x" for e in ENGINES
                )
                + f" (batch 128; best {args.mc_seconds_per_shower / best:,.0f}x)"
            )
    if not args.mc_seconds_per_shower:
        print("pass --mc-seconds-per-shower S (a Monte Carlo time per shower) for the speed-up over it")


if __name__ == "__main__":
    main()
