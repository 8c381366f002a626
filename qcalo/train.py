"""`python -m qcalo.train`: one training loop for every generator.

    python -m qcalo.train --generator quantum                   # hybrid quantum GAN, built-in data
    python -m qcalo.train --generator mlp                       # its classical twin (69 parameters)
    python -m qcalo.train --generator conv3d                    # built-in data, configs defaults
    python -m qcalo.train --config configs/conv2d.yaml --data 'EleEscan_*.h5' --epochs 30
    python -m qcalo.train --generator conv3d --out runs/a --resume        # continue a killed run
    torchrun --nproc_per_node=2 -m qcalo.train --generator conv3d         # several processes

The loop owns data, optimisers, progress bars, validation with qcalo.metrics, JSONL logs, plots
and checkpoints; the generator is a plug-in (`qcalo.generators`). Each step: the discriminator
learns on a real batch, then on a fake one, then the generator takes `g_steps` steps. All
randomness comes from seeded generators saved in the checkpoints, so a resumed run (even after
SIGKILL) reproduces the uninterrupted one on CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from qcalo import __version__, cli
from qcalo.atomic import atomic_path, write_text
from qcalo.config import DEFAULTS, with_saved
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.data.geometry import Geometry
from qcalo.data.views import total_energy
from qcalo.errors import ConfigError, QcaloError
from qcalo.generators import (
    GanPlugin,
    fit_log_energy,
    fit_sampling_fraction,
    get_plugin,
    per_shower,
    sampling_fraction,
)
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import MIN_PER_BIN, compare
from qcalo.metrics.observables import compute_features, relative_depth, transverse_rms

CHECKPOINT_FORMAT = "qcalo-checkpoint-1"


class TrainingError(QcaloError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file: a kill mid-write leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A qcalo checkpoint, loaded with weights_only=True (no code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not a qcalo checkpoint (expected format '{CHECKPOINT_FORMAT}')")
    return state


def plugin_from_checkpoint(state: dict[str, Any]) -> tuple[GanPlugin, nn.Module]:
    """The plug-in and its generator (eval mode, CPU) as saved in a checkpoint."""
    cls = get_plugin(state["config"]["generator"])
    config = with_saved({**DEFAULTS, **cls.defaults}, state["config"])
    plugin = cls(config, Geometry.from_json(state["geometry"]), state["calibration"])
    generator, _ = plugin.build()
    models = state["models"]
    generator.load_state_dict(models.get("generator_ema", models["generator"]))
    return plugin, generator.eval()


# --------------------------------------------------------------------------------------------
# Distributed set-up


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); under torchrun joins the process group (gloo / nccl)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return rank, world, torch.device("cuda", local)
    return rank, world, torch.device(device)


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# --------------------------------------------------------------------------------------------
# The loop


class Trainer:
    def __init__(self, config: dict[str, Any], resume: bool = False, progress: bool = True):
        self.cfg = config
        self.rank, self.world, self.device = init_distributed(config["device"])
        self.main = self.rank == 0
        self.out = Path(config["out"])
        self.progress = progress and self.main
        torch.manual_seed(config["seed"] * 1000 + self.rank)
        self.gen = torch.Generator().manual_seed(config["seed"] * 1000 + self.rank + 1)

        data = self._open_data()
        self.train_data, self.val_data = data.split(
            config["val_fraction"], config["split_by"], config["seed"]
        )
        self.geometry = data.geometry
        state = self._last_checkpoint() if resume else None
        plugin_cls = get_plugin(config["generator"])
        calibration = state["calibration"] if state else plugin_cls.calibrate(config, self.train_data)
        self.plugin = plugin_cls(config, self.geometry, calibration)
        g, d = self.plugin.build()
        self.g, self.d = g.to(self.device), d.to(self.device)
        if self.world > 1:
            self.g = nn.parallel.DistributedDataParallel(self.g)
            self.d = nn.parallel.DistributedDataParallel(self.d)
        self.opt_g = self._optimizer(self.g, config["lr_g"])
        self.opt_d = self._optimizer(self.d, config["lr_d"])
        self.stream = self.train_data.stream(
            config["batch_size"],
            seed=config["seed"],
            rank=self.rank,
            world_size=self.world,
            energy_power=config["sample_energy_power"],
        )
        train_energy = self.train_data.energy
        self.energy_range = (float(train_energy.min()), float(train_energy.max()))
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best = math.inf
        if not 0.0 <= config["ema"] < 1.0:
            raise ConfigError(f"ema {config['ema']}: expected a decay in [0, 1) (0: off)")
        self.g_ema = self._weights() if config["ema"] else None
        self.init_log: dict[str, Any] = {}
        self.started_from = bool(config["init_from"]) and not state
        if state:
            self._restore(state)
        else:
            if resume and self.main:
                print(f"qcalo: no checkpoint in {self.out}; starting a new run", file=sys.stderr)
            if config["init_from"]:
                self._init_from(config["init_from"])
        if self.main:
            self._prepare_run_folder(resumed=state is not None)
            if self.init_log:
                self._log(self.init_log)
            self.val_ref = self._validation_reference()
            # the transverse width, where the generator makes the data's cells: a generator can
            # meet the sampling fraction and depth with energy dumped in the volume's boundary
            # planes (measured: Conv3D runs, 30 % of a 10 GeV shower in the plane x = 0)
            geometry = self.train_data.geometry
            same_cells = self.plugin.output_geometry.shape == geometry.shape
            self.width_axis = geometry.transverse_axes[0] if same_cells and geometry.transverse_axes else None
            observables = [total_energy, relative_depth]
            if self.width_axis is not None:
                observables.append(lambda cells, geo: transverse_rms(cells, geo, self.width_axis))
            e, d, depth, *width = per_shower(self.train_data, *observables)
            self.sf_fit = fit_sampling_fraction(e, d)
            self.sf_spread_fit = fit_log_energy(e, d / e, stat=np.std)
            self.depth_fit = fit_log_energy(e, depth)
            self.width_fit = fit_log_energy(e, width[0]) if width else None

    # -- set-up helpers

    def _open_data(self) -> ShowerData:
        files = self.cfg["data"]
        if files is None:
            from qcalo.data.builtin import builtin_dataset

            files = [builtin_dataset(progress=self.main)]
        return open_showers(files, self.cfg["geometry"])

    def _optimizer(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        name = self.cfg["optimizer"]
        if name == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=lr, alpha=self.cfg["rho"], eps=1e-7)
        if name == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(self.cfg["betas"]))
        raise ConfigError(f"optimizer '{name}': expected 'rmsprop' or 'adam'")

    def _last_checkpoint(self) -> dict[str, Any] | None:
        path = self.out / "last.pt"
        return load_checkpoint(path) if path.exists() else None

    def _prepare_run_folder(self, resumed: bool) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "plots").mkdir(exist_ok=True)
        write_text(self.out / "config.json", json.dumps(self.cfg, indent=1) + "\n")
        log = self.out / "log.jsonl"
        if resumed and log.exists():  # drop what a killed run logged after its last checkpoint
            keep = [
                line
                for line in log.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= self.step
            ]
            write_text(log, "".join(line + "\n" for line in keep))
        elif not resumed:
            write_text(log, "")

    def _validation_reference(self):
        n = min(self.cfg["val_showers"], len(self.val_data))
        cells, energy = self.val_data.read(limit=n)
        ref = compute_features(ShowerData.from_arrays(cells, energy, self.geometry), view=self.plugin.view)
        # up to 5 energy bins, each with enough showers for the per-bin metrics
        return ref, EnergyBins.from_energies(ref.energy, max(1, min(5, n // (2 * MIN_PER_BIN))))

    # -- the generator's moving average (GAN weights oscillate; their average generates better)

    def _weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in _unwrap(self.g).state_dict().items()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.cfg["ema"]
        for key, value in _unwrap(self.g).state_dict().items():
            if value.is_floating_point():
                self.g_ema[key].lerp_(value, 1.0 - decay)
            else:
                self.g_ema[key].copy_(value)

    @contextmanager
    def _generating_weights(self) -> Iterator[nn.Module]:
        """The generator as it generates: with the averaged weights while inside, when `ema` is on."""
        g = _unwrap(self.g)
        if self.g_ema is None:
            yield g
            return
        training = self._weights()
        g.load_state_dict(self.g_ema)
        try:
            yield g
        finally:
            g.load_state_dict(training)

    # -- checkpoint state

    def _rng_state(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state(), "loop": self.gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _state(self) -> dict[str, Any]:
        rngs = [self._rng_state()]
        if self.world > 1:
            rngs = [None] * self.world
            dist.all_gather_object(rngs, self._rng_state())
        return {
            "format": CHECKPOINT_FORMAT,
            "qcalo_version": __version__,
            "config": self.cfg,
            "geometry": self.geometry.to_json(),
            "calibration": self.plugin.calibration,
            "models": {
                "generator": _unwrap(self.g).state_dict(),
                "discriminator": _unwrap(self.d).state_dict(),
                **({"generator_ema": self.g_ema} if self.g_ema is not None else {}),
            },
            "optimizers": {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            "rng": rngs,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "best": self.best,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if len(state["rng"]) != self.world:
            raise ConfigError(
                f"checkpoint was written by {len(state['rng'])} process(es); resume it "
                f"with the same number (now {self.world})"
            )
        _unwrap(self.g).load_state_dict(state["models"]["generator"])
        _unwrap(self.d).load_state_dict(state["models"]["discriminator"])
        if self.g_ema is not None:  # a run that turns ema on when resumed starts its average here
            saved = state["models"].get("generator_ema") or self._weights()
            # checkpoints load onto the CPU: the average must live where the weights train
            self.g_ema = {k: v.to(self.device, copy=True) for k, v in saved.items()}
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        rng = state["rng"][self.rank]
        torch.set_rng_state(rng["torch"])
        self.gen.set_state(rng["loop"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.epoch, self.batch, self.step, self.best = (
            state["epoch"],
            state["batch"],
            state["step"],
            state["best"],
        )

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
        models = state["models"]
        for name, module, weights in (
            ("generator", _unwrap(self.g), models.get("generator_ema", models["generator"])),
            ("discriminator", _unwrap(self.d), models["discriminator"]),
        ):
            own = module.state_dict()
            wrong = [k for k in own if k not in weights or weights[k].shape != own[k].shape]
            if wrong or set(weights) - set(own):
                raise ConfigError(
                    f"init_from {path}: its {name} does not fit this run's (keys or shapes differ: "
                    f"{', '.join(wrong or sorted(set(weights) - set(own)))}); train with the same "
                    f"architecture settings"
                )
            module.load_state_dict(weights)
        # its own seeded generator: the same refit on every rank, the loop's streams untouched
        refit_gen = torch.Generator().manual_seed(self.cfg["seed"])
        changed = self.plugin.adapt(_unwrap(self.g), self.train_data, refit_gen)
        if self.g_ema is not None:
            self.g_ema = self._weights()
        if self.main:
            refit = ", ".join(f"{k} {v:.4g}" for k, v in changed.items())
            print(
                f"qcalo: networks from {path}" + (f"; refitted on this device: {refit}" if refit else ""),
                file=sys.stderr,
            )
            self.init_log = {"step": 0, "init_from": str(path), **changed}

    def _checkpoint(self, best: bool = False) -> None:
        state = self._state()  # collective under DDP: every rank takes part
        if self.main:
            save_checkpoint(self.out / "last.pt", state)
            if best:
                save_checkpoint(self.out / "best.pt", state)

    def _log(self, record: dict[str, Any]) -> None:
        if self.main:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    # -- training

    def _set_learning_rates(self) -> None:
        """lr * 0.5^(step / lr_halflife): a function of the step alone, so resuming is exact."""
        halflife = self.cfg["lr_halflife"]
        factor = 0.5 ** (self.step / halflife) if halflife else 1.0
        for opt, key in ((self.opt_g, "lr_g"), (self.opt_d, "lr_d")):
            for group in opt.param_groups:
                group["lr"] = self.cfg[key] * factor

    def train_step(self, cells: torch.Tensor, energy: torch.Tensor) -> dict[str, float]:
        p, gen = self.plugin, self.gen
        self._set_learning_rates()
        energy = energy.to(self.device, torch.float32)
        x = p.to_model(cells.to(self.device), energy)
        self.d.train()
        logs: dict[str, float] = {}
        shared = None
        for real in (True, False):
            e_d = energy
            if real:
                batch = x
            elif self.cfg["share_fakes"]:  # one pass, kept for the generator step below
                self.g.train()
                e_d = self._generator_energies(energy)
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
        # DDP, whose all-reduce they do not need) it skips its weight gradients, ~10 % of a Conv3D step.
        d = _unwrap(self.d).requires_grad_(False)
        try:
            for k in range(self.cfg["g_steps"]):
                if k == 0 and shared is not None:
                    fake, e = shared
                else:
                    e = self._generator_energies(energy)
                    fake = self.g(p.latent(e, gen))
                loss, parts = p.g_loss(d, fake, e, gen, real=(x, energy))
                self._check(loss, "generator", parts)
                self.opt_g.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_g.step()
                if self.g_ema is not None:
                    self._update_ema()
                g_losses.append(loss.item())
        finally:
            d.requires_grad_(True)
        logs["g_loss"] = float(np.mean(g_losses))
        logs.update({f"g_{k}": v for k, v in parts.items()})
        return logs

    def _generator_energies(self, energy: torch.Tensor) -> torch.Tensor:
        """Primary energies of the generator's step: the real batch's, shuffled (the 3DGAN's
        way), or log-uniform over the training range, which trains the low-energy end of a flat
        spectrum as often as the high one."""
        how = self.cfg["g_energies"]
        if how == "batch":
            return energy[torch.randperm(len(energy), generator=self.gen).to(self.device)]
        if how == "log-uniform":
            lo, hi = (math.log(e) for e in self.energy_range)
            u = torch.rand(len(energy), generator=self.gen, dtype=torch.float64)
            return torch.exp(lo + (hi - lo) * u).to(self.device, torch.float32)
        raise ConfigError(f"g_energies '{how}': expected 'batch' or 'log-uniform'")

    def _check(self, loss: torch.Tensor, which: str, parts: dict[str, float]) -> None:
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={v:.4g}" for k, v in parts.items())
            raise TrainingError(
                f"the {which} loss became {loss.item()} at epoch {self.epoch} step {self.step} "
                f"({detail}); training stopped, the last good checkpoint is kept in {self.out}; "
                "try a lower learning rate (--set lr_g=... lr_d=...)"
            )

    def validate(self, epoch: int, plot: str = "") -> dict[str, float]:
        """Shower-shape MSE and sampling-fraction error of generated vs held-out showers
        (plots/<plot or epochNNN>.png)."""
        ref, bins = self.val_ref
        gen = torch.Generator().manual_seed(self.cfg["seed"] * 7919 + epoch)
        energy = torch.as_tensor(ref.energy, dtype=torch.float32)
        with self._generating_weights() as g:
            g.eval()
            batches = [self.plugin.generate(g, e.to(self.device), gen).cpu() for e in energy.split(256)]
            cells = torch.cat(batches)
            scan = self._energy_scan(g, epoch)
        fake = compute_features(
            ShowerData.from_arrays(cells.numpy(), ref.energy, self.plugin.output_geometry)
        )
        res = compare(ref, fake, bins, classifier=False)
        axis = ref.geometry.axes[ref.geometry.depth_axis]
        names = [
            "mse_shapes",
            "mre_sampling_fraction",
            "re_spread_sampling_fraction",
            f"kl_shape_{axis}",
            f"max_re_pixel_mean_{axis}",
            f"w1_pixels_{axis}",
            "mre_deposited_energy",
            "mse_corr_longitudinal",
        ]
        scores = {name: res[name]["overall"] for name in names}
        scores.update(scan)
        # Relative errors: of the sampling fraction (the worse of the held-out sample's and the
        # energy scan's), RMS of the shapes / peak, and |ln| of the ratio of the sampling
        # fraction's spreads (the resolution; symmetric, and bounded enough that a classical
        # GAN's 3x too wide spread early in training does not outweigh everything else), the
        # worse of the held-out sample's and the energy scan's; and the scan's worst relative
        # error of the mean shower depth (where the longitudinal maximum sits at each energy).
        sf_error = max(scores["mre_sampling_fraction"], scores.get("sf_scan_worst", 0.0))
        spread = abs(math.log(max(res["ratio_spread_sampling_fraction"]["overall"], 1e-6)))
        spread = max(spread, scores.get("spread_scan_worst", 0.0))
        scores["score"] = (
            sf_error
            + math.sqrt(scores["mse_shapes"])
            + self.cfg["score_spread_weight"] * spread
            + self.cfg["score_depth_weight"] * scores.get("depth_scan_worst", 0.0)
        )
        scores["per_bin"] = {
            "energy_bins": bins.labels(),
            **{name: [None if np.isnan(v) else v for v in res[name]["per_bin"]] for name in names},
        }
        from qcalo.metrics.plots import validation_figure

        validation_figure(
            ref,
            fake,
            bins,
            self.out / "plots" / f"{plot or f'epoch{epoch:03d}'}.png",
            title=f"{self.cfg['generator']} {plot or f'epoch {epoch}'}, step {self.step}",
        )
        return scores

    def _energy_scan(self, g: nn.Module, epoch: int) -> dict[str, float]:
        """Mean and spread of the generated sampling fraction, and the mean shower depth, at 5
        energies spread log-uniformly over the training range, against the data's fits: a flat
        held-out sample has few low-energy showers, and its bins are wide, so a score blind
        there lets the low-energy end drift unnoticed (measured: a quantum generator whose
        resolution swung +-50 % between 10 and 20 GeV scored as well as a good one on 100 GeV
        wide bins)."""
        n = self.cfg["val_scan_showers"]
        if not n:
            return {}
        gen = torch.Generator().manual_seed(self.cfg["seed"] * 7919 + epoch + 1)
        points = np.geomspace(*self.energy_range, 7)[1:-1]
        out = {}
        for e in points:
            energy = torch.full((n,), float(e))
            cells = self.plugin.generate(g, energy.to(self.device), gen).cpu().numpy()
            sf = total_energy(cells, self.plugin.output_geometry) / e
            at = torch.tensor(float(e), dtype=torch.float64)
            expected = sampling_fraction(self.sf_fit, at).item()
            spread = max(sampling_fraction(self.sf_spread_fit, at).item(), 1e-12)
            out[f"sf_scan_{e:.3g}GeV"] = float(sf.mean() / expected - 1)
            out[f"spread_scan_{e:.3g}GeV"] = float(np.log(max(sf.std(), 1e-12) / spread))
            depth = relative_depth(cells, self.plugin.output_geometry).mean()
            out[f"depth_scan_{e:.3g}GeV"] = float(depth / sampling_fraction(self.depth_fit, at).item() - 1)
            if self.width_fit is not None:
                width = transverse_rms(cells, self.plugin.output_geometry, self.width_axis).mean()
                expected_width = sampling_fraction(self.width_fit, at).item()
                out[f"width_scan_{e:.3g}GeV"] = float(width / expected_width - 1)
        for name in ("sf", "spread", "depth", "width"):
            errors = [abs(v) for k, v in out.items() if k.startswith(f"{name}_scan_")]
            if errors:
                out[f"{name}_scan_worst"] = max(errors)
        return out

    def _validate_and_log(self, epoch: int, plot: str, label: str) -> tuple[dict[str, Any], bool]:
        """Validate (main process), log and print it; (the scores, whether they beat best.pt)."""
        val = self.validate(epoch, plot)
        improved = val["score"] < self.best
        self.best = min(self.best, val["score"])
        self._log({"epoch": epoch, "step": self.step, "val": val})
        shown = (
            "score",
            "mse_shapes",
            "sf_scan_worst",
            "re_spread_sampling_fraction",
            "spread_scan_worst",
            "depth_scan_worst",
            "width_scan_worst",
        )
        summary = ", ".join(f"{k} {val[k]:.4g}" for k in shown if k in val)
        print(f"{label} (step {self.step}): {summary}", file=sys.stderr)
        return val, improved

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        max_steps = cfg["max_steps"] or math.inf
        if len(self.stream) == 0:
            raise ConfigError(
                f"batch_size {cfg['batch_size']} exceeds the {len(self.train_data)} training "
                f"showers (per process); lower it with --set batch_size=..."
            )
        last_val: dict[str, float] = {}
        if self.started_from:
            # what init_from (and its refit) gives is the first candidate for best.pt: on a noisy
            # device, gradient steps can make it worse (measured: validation score 0.150 at the
            # refitted start, 0.24-0.55 after each epoch of SPSA fine-tuning)
            improved = False
            if self.main:
                last_val, improved = self._validate_and_log(0, "start", f"start, from {cfg['init_from']}")
            self._checkpoint(best=improved)
        deadline = time.monotonic() + 60 * cfg["time_limit_min"] if cfg["time_limit_min"] else math.inf
        while self.epoch < cfg["epochs"] and self.step < max_steps and time.monotonic() < deadline:
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
                if self.step % cfg["log_every"] == 0:
                    bar.set_postfix(d=f"{logs['d_loss_real']:.3g}", g=f"{logs['g_loss']:.3g}")
                    per_step = (time.perf_counter() - t0) / (self.batch - done0)
                    self._log({"epoch": self.epoch, "step": self.step, **logs, "s_per_step": per_step})
                if cfg["checkpoint_every"] and self.step % cfg["checkpoint_every"] == 0:
                    self._checkpoint()
                # val_every: validate mid-epoch too (long epochs); the epoch then goes on from
                # this batch, as a resumed run does, so the training itself is unchanged
                val_due = cfg["val_every"] and self.step % cfg["val_every"] == 0
                if self.step >= max_steps or time.monotonic() >= deadline or val_due:
                    break
            bar.close()
            validated_epoch = self.epoch
            plot = ""
            if self.batch >= len(self.stream):  # the epoch is complete
                self.epoch, self.batch = self.epoch + 1, 0
            else:
                plot = f"epoch{validated_epoch:03d}_step{self.step}"
            improved = False
            if self.main:
                last_val, improved = self._validate_and_log(validated_epoch, plot, f"epoch {validated_epoch}")
            self._checkpoint(best=improved)
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return last_val


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--generator", default=None, help="conv3d, conv2d or quantum (default: from --config, else conv3d)"
    )
    p.add_argument("--config", default=None, help="YAML config (e.g. configs/conv3d.yaml)")
    p.add_argument("--data", nargs="+", default=None, help="HDF5 files or globs (default: built-in data)")
    p.add_argument("--out", default=None, help="run folder (default runs/<generator>)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/last.pt with OUT/config.json (options and --set still apply)",
    )
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from qcalo.config import load_config

    overrides = {
        "data": args.data,
        "out": args.out,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "device": args.device,
        "seed": args.seed,
    }
    cfg = load_config(args.generator, args.config, args.set, overrides)
    saved = Path(cfg["out"]) / "config.json"
    if args.resume and saved.exists():  # a resumed run keeps its own config; options still apply
        cfg = load_config(args.generator, None, args.set, overrides, base=json.loads(saved.read_text()))
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
