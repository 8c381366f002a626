"""`python -m qcalo.train`: one training loop for every generator.

    python -m qcalo.train --generator quantum                   # hybrid quantum GAN, built-in data
    python -m qcalo.train --generator conv2d --data 'EleEscan_*.h5' --epochs 30 --out runs/c2d
    python -m qcalo.train --generator conv2d --out runs/c2d --resume   # continue a killed run
    python -m qcalo.train --config configs/conv3d_stage2.yaml --resume # next stage of a recipe
    torchrun --nproc_per_node=2 -m qcalo.train --generator conv3d      # several processes

The loop owns data, optimisers, progress bars, validation (`qcalo.validation`), JSONL logs,
plots and checkpoints (`qcalo.checkpoint`); the generator is a plug-in (`qcalo.plugins`). Each
step: the discriminator learns on a real batch, then on a fake one, then the generator takes
`g_steps` steps. All randomness comes from seeded generators saved in the checkpoints, so a
resumed run (even after SIGKILL) reproduces the uninterrupted one on CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from qcalo import __version__, cli
from qcalo.atomic import write_text
from qcalo.checkpoint import FORMAT, generator_weights, load_checkpoint, load_weights, save_checkpoint
from qcalo.config import load_config
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.distributed import finish, gather, init_distributed, rng_state, set_rng_state, unwrap
from qcalo.errors import ConfigError, QcaloError
from qcalo.fits import fit_data
from qcalo.plugins import get_plugin
from qcalo.validation import reference, validate

SHOWN = ("score", "mse_shapes", "sf_scan_worst", "re_spread_sampling_fraction", "spread_scan_worst")
SHOWN += ("depth_scan_worst", "width_scan_worst")  # printed after each validation


class TrainingError(QcaloError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


class WeightAverage:
    """An exponential moving average of a module's weights: GAN weights oscillate, their
    average generates better. Integer buffers (BatchNorm counts) are copied."""

    def __init__(self, module: nn.Module, decay: float):
        self.module, self.decay = module, decay
        self.weights = self.current()

    def current(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        for key, value in self.module.state_dict().items():
            if value.is_floating_point():
                self.weights[key].lerp_(value, 1.0 - self.decay)
            else:
                self.weights[key].copy_(value)

    @contextmanager
    def swapped_in(self) -> Iterator[nn.Module]:
        training = self.current()
        self.module.load_state_dict(self.weights)
        try:
            yield self.module
        finally:
            self.module.load_state_dict(training)


def make_optimizer(config: dict[str, Any], module: nn.Module, lr: float) -> torch.optim.Optimizer:
    name = config["optimizer"]
    if name == "rmsprop":
        return torch.optim.RMSprop(module.parameters(), lr=lr, alpha=config["rho"], eps=1e-7)
    if name == "adam":
        return torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(config["betas"]))
    raise ConfigError(f"optimizer '{name}': expected 'rmsprop' or 'adam'")


class Trainer:
    def __init__(self, config: dict[str, Any], resume: bool = False, progress: bool = True):
        self.cfg = c = config
        self.rank, self.world, self.device = init_distributed(c["torch_device"])
        self.main = self.rank == 0
        self.out = Path(c["out"])
        self.progress = progress and self.main
        torch.manual_seed(c["seed"] * 1000 + self.rank)
        self.gen = torch.Generator().manual_seed(c["seed"] * 1000 + self.rank + 1)
        if not 0.0 <= c["ema"] < 1.0:
            raise ConfigError(f"ema {c['ema']}: expected a decay in [0, 1) (0: off)")

        data = self._open_data()
        self.train_data, self.val_data = data.split(c["val_fraction"], c["split_by"], c["seed"])
        self.geometry = data.geometry
        state = self._last_checkpoint() if resume else None
        self.fits = fit_data(self.train_data)
        plugin_cls = get_plugin(c["generator"])
        calibration = state["calibration"] if state else plugin_cls.calibrate(c, self.train_data, self.fits)
        self.plugin = plugin_cls(c, self.geometry, calibration)
        g, d = (m.to(self.device) for m in self.plugin.build())
        if self.world > 1:
            g, d = nn.parallel.DistributedDataParallel(g), nn.parallel.DistributedDataParallel(d)
        self.g, self.d = g, d
        self.opt_g = make_optimizer(c, self.g, c["lr_g"])
        self.opt_d = make_optimizer(c, self.d, c["lr_d"])
        self.stream = self.train_data.stream(
            c["batch_size"],
            seed=c["seed"],
            rank=self.rank,
            world_size=self.world,
            energy_power=c["sample_energy_power"],
        )
        self.epoch, self.batch, self.step, self.best = 0, 0, 0, math.inf
        self.ema = WeightAverage(unwrap(self.g), c["ema"]) if c["ema"] else None
        self.init_log: dict[str, Any] = {}
        self.started_from = bool(c["init_from"]) and not state
        if state:
            self._restore(state)
        else:
            if resume and self.main:
                print(f"qcalo: no checkpoint in {self.out}; starting a new run", file=sys.stderr)
            if c["init_from"]:
                self._init_from(c["init_from"])
        if self.main:
            self._prepare_run_folder(resumed=state is not None)
            if self.init_log:
                self._log(self.init_log)
            self.val_ref = reference(self.val_data, self.plugin, c["val_showers"])

    def _open_data(self) -> ShowerData:
        files = self.cfg["data"]
        if files is None:
            from qcalo.data.builtin import builtin_dataset

            files = [builtin_dataset(progress=self.main)]
        return open_showers(files, self.cfg["geometry"])

    def _last_checkpoint(self) -> dict[str, Any] | None:
        path = self.out / "last.pt"
        return load_checkpoint(path) if path.exists() else None

    def _prepare_run_folder(self, resumed: bool) -> None:
        (self.out / "plots").mkdir(parents=True, exist_ok=True)
        write_text(self.out / "config.json", json.dumps(self.cfg, indent=1) + "\n")
        log = self.out / "log.jsonl"
        if resumed and log.exists():  # drop what a killed run logged after its last checkpoint
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            write_text(log, "".join(f"{x}\n" for x in lines if json.loads(x).get("step", 0) <= self.step))
        elif not resumed:
            write_text(log, "")

    @contextmanager
    def generating(self) -> Iterator[nn.Module]:
        """The generator as it generates (eval mode; the averaged weights when `ema` is on)."""
        if self.ema is None:
            yield unwrap(self.g).eval()
        else:
            with self.ema.swapped_in() as g:
                yield g.eval()

    # -- checkpoint state

    def state(self) -> dict[str, Any]:
        """The checkpoint of this moment (collective under DDP: every rank takes part)."""
        return {
            "format": FORMAT,
            "qcalo_version": __version__,
            "config": self.cfg,
            "geometry": self.geometry.to_json(),
            "calibration": self.plugin.calibration,
            "models": {
                "generator": unwrap(self.g).state_dict(),
                "discriminator": unwrap(self.d).state_dict(),
                **({"generator_ema": self.ema.weights} if self.ema is not None else {}),
            },
            "optimizers": {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            "rng": gather(rng_state(self.gen, self.device), self.world),
            **{k: getattr(self, k) for k in ("epoch", "batch", "step", "best")},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if len(state["rng"]) != self.world:
            raise ConfigError(
                f"checkpoint was written by {len(state['rng'])} process(es); resume it "
                f"with the same number (now {self.world})"
            )
        unwrap(self.g).load_state_dict(state["models"]["generator"])
        unwrap(self.d).load_state_dict(state["models"]["discriminator"])
        if self.ema is not None:  # a run that turns ema on when resumed starts its average here
            saved = state["models"].get("generator_ema") or self.ema.current()
            # checkpoints load onto the CPU: the average must live where the weights train
            self.ema.weights = {k: v.to(self.device, copy=True) for k, v in saved.items()}
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        set_rng_state(state["rng"][self.rank], self.gen, self.device)
        self.epoch, self.batch, self.step, self.best = (state[k] for k in ("epoch", "batch", "step", "best"))

    def _init_from(self, path: str) -> None:
        """Start a new run from another run's networks (a resumed run ignores this)."""
        if Path(path).resolve().parent == self.out.resolve():
            raise ConfigError(
                f"init_from {path} is in this run's folder {self.out}, which the new run would "
                "overwrite; choose another --out"
            )
        try:
            state = load_checkpoint(path)
        except ConfigError as exc:
            raise ConfigError(f"init_from: {exc} (train that run first, or --set init_from=null)") from None
        saved = state["config"]["generator"]
        if saved != self.cfg["generator"]:
            raise ConfigError(
                f"init_from {path}: a '{saved}' checkpoint, this run trains '{self.cfg['generator']}'"
            )
        load_weights(unwrap(self.g), generator_weights(state), f"init_from {path}: its generator")
        load_weights(unwrap(self.d), state["models"]["discriminator"], f"init_from {path}: its discriminator")
        # its own seeded generator: the same refit on every rank, the loop's streams untouched
        changed = self.plugin.refit_to_data(
            unwrap(self.g), self.train_data, torch.Generator().manual_seed(self.cfg["seed"])
        )
        if self.ema is not None:
            self.ema.weights = self.ema.current()
        if self.main:
            refit = ", ".join(f"{k} {v:.4g}" for k, v in changed.items())
            print(
                f"qcalo: networks from {path}" + (f"; refitted on this device: {refit}" if refit else ""),
                file=sys.stderr,
            )
            self.init_log = {"step": 0, "init_from": str(path), **changed}

    def checkpoint(self, best: bool = False) -> None:
        state = self.state()
        if self.main:
            save_checkpoint(self.out / "last.pt", state)
            if best:
                save_checkpoint(self.out / "best.pt", state)

    def _log(self, record: dict[str, Any]) -> None:
        if self.main:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    # -- training

    def train_step(self, cells: torch.Tensor, energy: torch.Tensor) -> dict[str, float]:
        p, gen, c = self.plugin, self.gen, self.cfg
        factor = 0.5 ** (self.step / c["lr_halflife"]) if c["lr_halflife"] else 1.0  # exact on resume
        for opt, key in ((self.opt_g, "lr_g"), (self.opt_d, "lr_d")):
            for group in opt.param_groups:
                group["lr"] = c[key] * factor
        energy = energy.to(self.device, torch.float32)
        x = p.to_model(cells.to(self.device), energy)
        self.d.train()
        logs: dict[str, float] = {}
        shared = None
        for real in (True, False):
            e_d = energy
            if real:
                batch = x
            elif c["share_fakes"]:  # one pass, kept for the generator step below
                self.g.train()
                e_d = self._shuffled(energy)
                shared = (self.g(p.latent(e_d, gen)), e_d)
                batch = shared[0].detach()
            else:  # fakes come from the generator in inference mode, as Keras' predict() did
                self.g.eval()
                with torch.no_grad():
                    batch = self.g(p.latent(energy, gen))
            loss, parts = p.d_loss(self.d, batch, e_d, real, gen)
            self._check(loss, "discriminator", parts)
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            logs[f"d_loss_{'real' if real else 'fake'}"] = loss.item()
        self.g.train()
        g_losses = []
        # The generator's steps need the discriminator's input gradient only: frozen (and outside
        # DDP, whose all-reduce they do not need) it skips its weight gradients.
        d = unwrap(self.d).requires_grad_(False)
        try:
            for k in range(c["g_steps"]):
                if k == 0 and shared is not None:
                    fake, e = shared
                else:
                    e = self._shuffled(energy)
                    fake = self.g(p.latent(e, gen))
                loss, parts = p.g_loss(d, fake, e, gen, real=(x, energy))
                self._check(loss, "generator", parts)
                self.opt_g.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_g.step()
                if self.ema is not None:
                    self.ema.update()
                g_losses.append(loss.item())
        finally:
            d.requires_grad_(True)
        logs["g_loss"] = float(np.mean(g_losses))
        logs.update({f"g_{k}": v for k, v in parts.items()})
        return logs

    def _shuffled(self, energy: torch.Tensor) -> torch.Tensor:
        """The generator's primary energies: the real batch's, shuffled (the 3DGAN's way)."""
        return energy[torch.randperm(len(energy), generator=self.gen).to(self.device)]

    def _check(self, loss: torch.Tensor, which: str, parts: dict[str, float]) -> None:
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={v:.4g}" for k, v in parts.items())
            raise TrainingError(
                f"the {which} loss became {loss.item()} at epoch {self.epoch} step {self.step} "
                f"({detail}); training stopped, the last good checkpoint is kept in {self.out}; "
                "try a lower learning rate (--set lr_g=... lr_d=...)"
            )

    def validate(self, epoch: int, plot: str = "") -> dict[str, Any]:
        """Validate (main process), log and print it; the scores, `improved` among them."""
        name = plot or f"epoch{epoch:03d}"
        title = f"{self.cfg['generator']} {plot or f'epoch {epoch}'}, step {self.step}"
        with self.generating() as g:
            val = validate(
                self.plugin,
                g,
                self.val_ref,
                self.fits,
                self.cfg,
                epoch,
                self.device,
                self.out / "plots" / f"{name}.png",
                title,
            )
        improved = val["score"] < self.best
        self.best = min(self.best, val["score"])
        self._log({"epoch": epoch, "step": self.step, "val": val})
        summary = ", ".join(f"{k} {val[k]:.4g}" for k in SHOWN if k in val)
        label = f"start, from {self.cfg['init_from']}" if plot == "start" else f"epoch {epoch}"
        print(f"{label} (step {self.step}): {summary}", file=sys.stderr)
        return {**val, "improved": improved}

    def fit(self) -> dict[str, Any]:
        c = self.cfg
        max_steps = c["max_steps"] or math.inf
        if len(self.stream) == 0:
            raise ConfigError(
                f"batch_size {c['batch_size']} exceeds the {len(self.train_data)} training "
                f"showers (per process); lower it with --set batch_size=..."
            )
        last_val: dict[str, Any] = {}
        if self.started_from:  # what init_from (and its refit) gives is the first candidate for best.pt
            last_val = self.validate(0, "start") if self.main else {}
            self.checkpoint(best=last_val.get("improved", False))
        deadline = time.monotonic() + 60 * c["time_limit_min"] if c["time_limit_min"] else math.inf
        while self.epoch < c["epochs"] and self.step < max_steps and time.monotonic() < deadline:
            self.stream.set_epoch(self.epoch, self.batch)
            bar = tqdm(
                total=len(self.stream),
                initial=self.batch,
                disable=not self.progress,
                desc=f"epoch {self.epoch}",
                unit="batch",
                dynamic_ncols=True,
            )
            t0, done0 = time.perf_counter(), self.batch
            for cells, energy in self.stream:
                logs = self.train_step(cells, energy)
                self.batch += 1
                self.step += 1
                bar.update(1)
                if self.step % c["log_every"] == 0:
                    bar.set_postfix(d=f"{logs['d_loss_real']:.3g}", g=f"{logs['g_loss']:.3g}")
                    per_step = (time.perf_counter() - t0) / (self.batch - done0)
                    self._log({"epoch": self.epoch, "step": self.step, **logs, "s_per_step": per_step})
                if c["checkpoint_every"] and self.step % c["checkpoint_every"] == 0:
                    self.checkpoint()
                # val_every validates mid-epoch; the epoch then goes on from this batch, as a
                # resumed run does, so the training itself is unchanged
                val_due = c["val_every"] and self.step % c["val_every"] == 0
                if self.step >= max_steps or time.monotonic() >= deadline or val_due:
                    break
            bar.close()
            validated_epoch, plot = self.epoch, ""
            if self.batch >= len(self.stream):  # the epoch is complete
                self.epoch, self.batch = self.epoch + 1, 0
            else:
                plot = f"epoch{validated_epoch:03d}_step{self.step}"
            last_val = self.validate(validated_epoch, plot) if self.main else {}
            self.checkpoint(best=last_val.get("improved", False))
        finish(self.world)
        return last_val


def untrained_checkpoint(config: dict[str, Any]) -> Path:
    """A step-0 checkpoint of `config` in its run folder (calibrated on its data, random
    weights): what benchmarks and tests of export and generation start from."""
    trainer = Trainer(config, progress=False)
    trainer.checkpoint()
    return trainer.out / "last.pt"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--generator",
        default=None,
        help="a registered generator: conv3d, conv2d, quantum, mlp, ... "
        "(default: from --config, else conv3d); loads its preset configs/NAME.yaml",
    )
    p.add_argument(
        "--config", default=None, help="YAML file on top of the preset (e.g. configs/quantum_aer.yaml)"
    )
    p.add_argument("--data", nargs="+", default=None, help="HDF5 files or globs (default: built-in data)")
    p.add_argument("--out", default=None, help="run folder (default runs/<generator>)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    p.add_argument("--torch-device", default=None, help="where torch runs: cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/last.pt with its config (--config, options and --set apply on top)",
    )
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    overrides = {
        "data": args.data,
        "out": args.out,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "torch_device": args.torch_device,
        "seed": args.seed,
    }
    cfg = load_config(args.generator, args.config, args.set, overrides)
    last = Path(cfg["out"]) / "last.pt"
    if args.resume and last.exists():  # a resumed run keeps its own config; file, options, --set apply
        saved = load_checkpoint(last)["config"]
        cfg = load_config(args.generator, args.config, args.set, overrides, base=saved)
    trainer = Trainer(cfg, resume=args.resume, progress=not args.quiet)
    if trainer.main:
        where = f"{trainer.device} x {trainer.world}"
        print(f"qcalo.train: {cfg['generator']} on {where}, run folder {trainer.out}", file=sys.stderr)
    trainer.fit()
    if trainer.main:
        out = trainer.out
        print(f"checkpoints: {out / 'last.pt'}, {out / 'best.pt'}; log: {out / 'log.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
