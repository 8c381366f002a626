"""`python -m qcalo.generate`: showers from a trained generator, written like any data set.

    python -m qcalo.generate --checkpoint runs/conv3d/best.pt --energies 10 50 100 --n 1000 --out gen.h5
    python -m qcalo.generate --checkpoint CKPT --energy-range 2 500 --n 10000 --seed 1 --out gen.h5
    python -m qcalo.generate --checkpoint CKPT --energies-from heldout.h5 --out gen.h5
    python -m qcalo.generate --onnx conv2d.int8.onnx --threads 2 --energies 10 50 100 --n 1000 --out gen.h5
    python -m qcalo.generate --checkpoint runs/quantum/best.pt --energies 10 50 --n 500 --out aer.h5 \
        --set device.name=qiskit.aer device.shots=1024 device.noise_model=fake_torino

The output goes through the data layer's writer (3DGAN layout, geometry attribute), so
`python -m qcalo.evaluate` reads it directly. Batched, with a progress bar; the same seed gives
the same file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qcalo import cli
from qcalo.data.dataset import open_showers
from qcalo.data.simulate import sample_energies
from qcalo.data.writer import ShowerWriter
from qcalo.errors import ConfigError
from qcalo.onnx_generator import OnnxGenerator


def generate_file(
    checkpoint: str | Path,
    energies: np.ndarray,
    out: str | Path,
    seed: int = 0,
    batch_size: int = 128,
    device: str = "cpu",
    progress: bool = True,
    sets: Sequence[str] = (),
    threads: int = 0,
) -> Path:
    """Generate one shower per primary energy (GeV) into `out`, from a checkpoint of
    qcalo.train or, when the path ends in .onnx, a model of qcalo.export (onnxruntime with
    `threads`; the same seed gives the same noise as from the checkpoint).

    `sets` ('key=value') change a checkpoint's saved config first: a quantum generator trained on
    a simulator then runs on another device (device.name, device.shots, device.noise_model, ...).
    """
    if Path(checkpoint).suffix == ".onnx":
        if sets:
            raise ConfigError("--set changes a checkpoint's config; an ONNX model has none to change")
        model = OnnxGenerator(checkpoint, threads)
        geometry, name, step = model.geometry, f"{model.info['generator']} onnx", model.info["step"]

        def make(e: np.ndarray, gen: torch.Generator) -> np.ndarray:
            return model.generate(e, gen)
    else:
        from qcalo.checkpoint import load_checkpoint, plugin_from_checkpoint
        from qcalo.config import load_config

        state = load_checkpoint(checkpoint)
        if sets:
            state["config"] = load_config(None, sets=sets, base=state["config"])
        plugin, generator = plugin_from_checkpoint(state)
        generator.to(device)
        geometry, name, step = plugin.output_geometry, state["config"]["generator"], state["step"]

        def make(e: np.ndarray, gen: torch.Generator) -> np.ndarray:
            energy = torch.as_tensor(e, dtype=torch.float32, device=device)
            return plugin.generate(generator, energy, gen).cpu().numpy()

    gen = torch.Generator().manual_seed(seed)
    attrs = {"checkpoint": str(checkpoint), "checkpoint_step": int(step), "generator": name}
    with (
        ShowerWriter(out, geometry, f"qcalo.generate ({name})", seed, attrs) as writer,
        tqdm(total=len(energies), unit="shower", disable=not progress, desc="generate") as bar,
    ):
        for start in range(0, len(energies), batch_size):
            e = energies[start : start + batch_size]
            writer.append(make(e, gen), e)
            bar.update(len(e))
    return Path(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.generate", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a checkpoint written by qcalo.train")
    src.add_argument("--onnx", metavar="MODEL.onnx", help="a model written by qcalo.export (onnxruntime)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--energies", type=float, nargs="+", metavar="E", help="fixed energies (GeV), --n each")
    g.add_argument(
        "--energy-range", type=float, nargs=2, metavar=("LO", "HI"), help="flat in GeV, --n in all"
    )
    g.add_argument("--energies-from", nargs="+", metavar="FILE", help="one shower per shower of these files")
    p.add_argument("--n", type=int, default=None, help="showers (per energy with --energies)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--torch-device", default="cpu", help="where a checkpoint generates: cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: one per core)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="change the checkpoint's config, e.g. device.name=qiskit.aer device.shots=1024",
    )
    args = p.parse_args(argv)
    if args.energies_from:
        energies = open_showers(args.energies_from).energy
    else:
        if not args.n or args.n <= 0:
            raise ConfigError("--n must be a positive number of showers")
        if args.energy_range and not 0 < args.energy_range[0] < args.energy_range[1]:
            raise ConfigError(f"--energy-range needs 0 < LO < HI GeV, got {args.energy_range}")
        if args.energies and min(args.energies) <= 0:
            raise ConfigError("--energies must all be > 0 GeV")
        energies = sample_energies(
            args.n,
            np.random.default_rng([args.seed, 1]),
            tuple(args.energy_range) if args.energy_range else None,
            args.energies,
        )
    if args.batch_size <= 0:
        raise ConfigError("--batch-size must be positive")
    if args.torch_device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--torch-device {args.torch_device}: torch sees no CUDA device")
    if args.onnx:
        if Path(args.onnx).suffix != ".onnx":
            raise ConfigError(f"--onnx {args.onnx}: expected a .onnx file written by python -m qcalo.export")
        if args.torch_device != "cpu":
            raise ConfigError("--onnx runs on the CPU (onnxruntime); drop --torch-device")
    if args.threads < 0:
        raise ConfigError("--threads must be >= 0")
    path = generate_file(
        args.onnx or args.checkpoint,
        energies,
        args.out,
        args.seed,
        args.batch_size,
        args.torch_device,
        not args.quiet,
        args.set,
        args.threads,
    )
    print(f"wrote {len(energies)} showers to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
