"""Generator plug-ins: the one small interface between a generator and the training loop.

A plug-in supplies the networks, how showers enter them and leave them, and the losses; the loop
(`qcalo.train`) owns data, optimisers, progress, validation, logs and checkpoints and knows
nothing else of the generator, the way PennyLane devices sit behind one string. Plug-ins are
found by name in REGISTRY and imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from qcalo.data.dataset import ShowerData
from qcalo.data.geometry import Geometry
from qcalo.data.views import View, total_energy
from qcalo.errors import ConfigError

REGISTRY: dict[str, str] = {
    "conv3d": "classical.plugin:Conv3DPlugin",
    "conv2d": "classical.plugin:Conv2DPlugin",
    "quantum": "qcalo.quantum.plugin:QuantumPlugin",
    "mlp": "classical.twin:MLPTwinPlugin",  # the quantum generator's classical twin
}


def get_plugin(name: str) -> type[GanPlugin]:
    """The plug-in class registered under `name`."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown generator '{name}'; expected one of {', '.join(REGISTRY)}")
    module, _, attr = REGISTRY[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"generator '{name}' is registered but cannot be loaded: {exc}") from None


class GanPlugin:
    """Base class of generator plug-ins: an energy-conditioned GAN.

    `x` below is a batch in the model's own space (after `to_model`), `energy` the primary
    energies in GeV (tensor, shape (B,)), `gen` the loop's torch.Generator (all randomness of a
    step comes from it, so that runs resume bit for bit).
    """

    name = "base"
    defaults: dict[str, Any] = {}  # plug-in specific config keys and their defaults
    view: View | None = None  # a reduced generator's view of the showers (validation reduces to it)
    not_exportable = ""  # why ONNX cannot hold this generator ("": qcalo.export can write it)

    def __init__(self, config: dict[str, Any], geometry: Geometry, calibration: dict[str, Any]):
        self.config = config
        self.geometry = geometry
        self.calibration = calibration

    @classmethod
    def calibrate(cls, config: dict[str, Any], data: ShowerData) -> dict[str, Any]:
        """Figures taken from the training data once and kept in the checkpoint."""
        return {}

    def build(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator)."""
        raise NotImplementedError

    def adapt(self, generator: nn.Module, data: ShowerData, gen: torch.Generator) -> dict[str, float]:
        """Called when a run starts from another run's networks (`init_from`), possibly on another
        device: refit in closed form what the data fix directly. Returns what it changed (logged)."""
        return {}

    def to_model(self, cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """A batch of showers (GeV) in the model's space."""
        return cells

    def showers(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """Back from the model's space to showers in GeV."""
        return x

    @property
    def noise_size(self) -> int:
        """Length of the Gaussian noise vector of one shower."""
        raise NotImplementedError

    def condition(self, noise: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """The generator's input from noise and primary energies (GeV): a pure function of both,
        so an exported model (`qcalo.export`) takes (noise, energy) and needs nothing of qcalo."""
        raise NotImplementedError

    def latent(self, energy: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.condition(gaussian_noise(len(energy), self.noise_size, gen).to(energy.device), energy)

    def d_loss(
        self, disc: nn.Module, x: torch.Tensor, energy: torch.Tensor, real: bool, gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def g_loss(
        self,
        disc: nn.Module,
        fake: torch.Tensor,
        energy: torch.Tensor,
        gen: torch.Generator,
        real: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """`real`: the step's real batch (model space) and its energies, for sample-based terms."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, generator: nn.Module, energy: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Showers in GeV for primary energies in GeV (generator in eval mode)."""
        return self.showers(generator(self.latent(energy, gen)), energy)

    @property
    def output_geometry(self) -> Geometry:
        """The geometry of what `generate` returns (a reduced view for reduced generators)."""
        return self.geometry if self.view is None else self.view.output_geometry(self.geometry)


def gaussian_noise(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """The noise of n showers, N(0, 1)^size, drawn from `gen`: one function for checkpoints and
    exported models, so the same seed gives the same showers from both."""
    return torch.randn(n, size, generator=gen)


def fit_log_energy(energy: np.ndarray, values: np.ndarray, degree: int = 2, stat=np.mean) -> list[float]:
    """Coefficients of a per-shower quantity's `stat` (mean, std, ...) as a polynomial in ln E
    (highest power first), fitted to up to 20 energy bins of equal population: a smooth energy
    dependence that generators are conditioned on, kept in their checkpoints."""
    edges = np.unique(np.quantile(np.log(energy), np.linspace(0, 1, 21)))
    idx = np.clip(np.searchsorted(edges, np.log(energy), "right") - 1, 0, max(len(edges) - 2, 0))
    centres, stats = [], []
    for b in np.unique(idx):
        sel = idx == b
        centres.append(np.log(energy[sel]).mean())
        stats.append(stat(values[sel]))
    degree = min(degree, len(centres) - 1)
    return np.polyfit(centres, stats, degree).tolist()


def fit_sampling_fraction(energy: np.ndarray, deposited: np.ndarray, degree: int = 2) -> list[float]:
    """`fit_log_energy` of deposited / E, so the expected ECAL sum of a generated shower follows
    the data (the 3DGAN's 'fit from ROOT' of the sampling fraction)."""
    return fit_log_energy(energy, deposited / energy, degree)


def per_shower(data: ShowerData, *observables: Callable) -> tuple[np.ndarray, ...]:
    """(primary energies, then `observable(cells, geometry)` of every shower for each
    observable) of a whole data set, read chunk by chunk in one pass."""
    columns: list[list[np.ndarray]] = [[] for _ in range(len(observables) + 1)]
    for cells, e in data.chunks():
        columns[0].append(e)
        for column, observable in zip(columns[1:], observables, strict=True):
            column.append(np.asarray(observable(cells, data.geometry), dtype=np.float64))
    return tuple(np.concatenate(c) for c in columns)


def deposited_energies(data: ShowerData) -> tuple[np.ndarray, np.ndarray]:
    """(primary energies, deposited energies) of a whole data set, read chunk by chunk (GeV)."""
    return per_shower(data, total_energy)


def data_sampling_fraction(data: ShowerData) -> list[float]:
    """`fit_sampling_fraction` of a whole data set."""
    return fit_sampling_fraction(*deposited_energies(data))


def sampling_fraction(coeffs: list[float] | torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """Evaluate a `fit_log_energy` polynomial (e.g. the sampling fraction) at energies (GeV), in
    torch. `coeffs` may also be a (powers, K) tensor of K polynomials, with energy (B, 1): (B, K)."""
    x = torch.log(energy)
    out = torch.zeros_like(x)
    for c in coeffs:
        out = out * x + c
    return out
