"""Conv3D (3DGAN) vs Conv2D generators, side by side in one run.

Prints for each architecture: parameter counts, generator inference time per shower at batch 1
and batch 128 (median of repeats), and one full training step (discriminator on real + fake,
`g_steps` generator updates, the 3DGAN losses) per shower; on the CPU with `--threads` threads
and on CUDA when torch sees a GPU; then the Conv3D / Conv2D ratios (the seed reports 3.4x at
inference and 6.45x in training, on GPU).

    python bench/bench_classical.py [--threads 2] [--train-batch 16] [--repeats 5] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from classical.plugin import Conv2DPlugin, Conv3DPlugin
from qcalo.config import DEFAULTS
from qcalo.data.geometry import ecal_3dgan
from qcalo.data.simulate import simulate


def median_time(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(plugin_cls, device: torch.device, train_batch: int, repeats: int) -> dict[str, float]:
    cfg = {**DEFAULTS, **plugin_cls.defaults}
    plugin = plugin_cls(cfg, ecal_3dgan(), {"sampling_fraction": [0.0, 0.0, 0.0245]})
    g, d = (m.to(device) for m in plugin.build())
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
    energy = torch.linspace(10, 400, train_batch)
    cells = torch.from_numpy(simulate(energy.numpy(), seed=0))
    opt_g = torch.optim.RMSprop(g.parameters(), lr=1e-3, alpha=0.9)
    opt_d = torch.optim.RMSprop(d.parameters(), lr=1e-3, alpha=0.9)
    x, e = plugin.to_model(cells.to(device), energy.to(device)), energy.to(device)

    def step():
        d.train()
        g.eval()
        with torch.no_grad():
            fake = g(plugin.latent(e, gen))
        for batch, real in ((x, True), (fake, False)):
            loss, _ = plugin.d_loss(d, batch, e, real, gen)
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        g.train()
        d.requires_grad_(False)  # as qcalo.train: no discriminator weight gradients in generator steps
        for _ in range(cfg["g_steps"]):
            loss, _ = plugin.g_loss(d, g(plugin.latent(e, gen)), e, gen)
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
        d.requires_grad_(True)

    out["train_ms_per_shower"] = 1e3 * median_time(step, max(2, repeats // 2), sync) / train_batch
    return out


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
    for device in devices:
        label = (
            f"{device.type} ({args.threads} threads)"
            if device.type == "cpu"
            else torch.cuda.get_device_name()
        )
        print(f"== {label}, torch {torch.__version__}, training batch {args.train_batch}")
        res = {
            name: bench(cls, device, args.train_batch, args.repeats)
            for name, cls in (("conv3d", Conv3DPlugin), ("conv2d", Conv2DPlugin))
        }
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


if __name__ == "__main__":
    main()
