"""Conv3D (3DGAN) vs Conv2D generators, side by side in one run.

Prints for each architecture: parameter counts, generator inference time per shower at batch 1
and batch 128 (median of repeats), and one step of the training loop (`Trainer.train_step`:
discriminator on real + fake, `g_steps` generator updates, moving average) per shower, on
simulated showers; on the CPU with `--threads` threads and on CUDA when torch sees a GPU; then
the Conv3D / Conv2D ratios (the seed reports 3.4x at inference and 6.45x in training, on GPU).

    python bench/bench_classical.py [--threads 2] [--train-batch 16] [--repeats 5] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import median_time

from qcalo.config import load_config
from qcalo.data.simulate import simulate_file
from qcalo.train import Trainer


def bench(name: str, device: torch.device, train_batch: int, repeats: int, data: Path) -> dict[str, float]:
    """Figures for one architecture; the training step is `qcalo.train.Trainer.train_step` itself
    (discriminator on real + fake, `g_steps` generator updates, moving average), on `data`; the
    trainer's run folder sits beside `data` (removed with it)."""
    run = data.parent / f"{name}-{device.type}"
    cfg = load_config(
        name,
        overrides={
            "data": [str(data)],
            "out": str(run),
            "torch_device": device.type,
            "batch_size": train_batch,
        },
    )
    trainer = Trainer(cfg, progress=False)
    plugin, g, d = trainer.plugin, trainer.g, trainer.d
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    out = {
        "g_params": sum(p.numel() for p in g.parameters()),
        "d_params": sum(p.numel() for p in d.parameters()),
    }
    g.eval()
    for batch in (1, 128):
        z = plugin.latent(torch.full((batch,), 50.0, device=device), gen)
        with torch.no_grad():
            out[f"infer_b{batch}_ms"] = 1e3 * median_time(lambda z=z: g(z), repeats, sync) / batch
    cells, energy = (torch.from_numpy(a) for a in trainer.train_data.read(limit=train_batch))
    step = functools.partial(trainer.train_step, cells, energy)
    out["train_ms_per_shower"] = 1e3 * median_time(step, max(2, repeats // 2), sync) / train_batch
    return out


def report(device: torch.device, args: argparse.Namespace, data: Path) -> None:
    """One device's table: both architectures and their ratios."""
    label = (
        f"{device.type} ({args.threads} threads)" if device.type == "cpu" else torch.cuda.get_device_name()
    )
    print(f"== {label}, torch {torch.__version__}, training batch {args.train_batch}")
    res = {name: bench(name, device, args.train_batch, args.repeats, data) for name in ("conv3d", "conv2d")}
    print(f"{'':28}{'conv3d':>12}{'conv2d':>12}{'3d / 2d':>10}")
    for key, label_ in (
        ("g_params", "generator parameters"),
        ("d_params", "discriminator parameters"),
        ("infer_b1_ms", "inference ms/shower, b=1"),
        ("infer_b128_ms", "inference ms/shower, b=128"),
        ("train_ms_per_shower", "training ms/shower (1 step)"),
    ):
        a, b = res["conv3d"][key], res["conv2d"][key]
        print(f"{label_:28}{a:12.4g}{b:12.4g}{a / b:10.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--devices", nargs="+", choices=("cpu", "cuda"), default=None, help="default: cpu, and cuda if seen"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [torch.device(name) for name in names]
    with tempfile.TemporaryDirectory() as tmp:
        energies = np.linspace(10.0, 400.0, max(4 * args.train_batch, 64))
        data = simulate_file(Path(tmp) / "showers.h5", energies, seed=0, progress=False)
        for device in devices:
            report(device, args, data)


if __name__ == "__main__":
    main()
