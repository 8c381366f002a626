"""Generator plug-ins: the one small interface between a generator and the training loop.

A plug-in supplies the networks, how showers enter and leave them, and the losses; the loop
(`qcalo.train`) owns data, optimisers, progress, validation, logs and checkpoints and knows
nothing else of the generator, the way PennyLane devices sit behind one string. Plug-ins are
found by name in the `qcalo.generators` entry-point group (pyproject.toml), so a third-party
package adds a generator exactly as `classical/` and `qcalo/quantum/` do (docs/plugins.md).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import torch
from torch import nn

from qcalo.data.dataset import ShowerData
from qcalo.data.geometry import Geometry
from qcalo.data.views import View
from qcalo.errors import ConfigError

ENTRY_POINT_GROUP = "qcalo.generators"


def registry() -> dict[str, Any]:
    """Generator name -> its entry point (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_plugin(name: str) -> type[GanPlugin]:
    """The plug-in class registered under `name`."""
    found = registry()
    if not found:
        raise ConfigError(
            f"no generators are registered (entry-point group '{ENTRY_POINT_GROUP}'); "
            "install qcalo with pip install -e . (or pip install qcalo)"
        )
    if name not in found:
        raise ConfigError(f"unknown generator '{name}'; expected one of {', '.join(sorted(found))}")
    try:
        cls = found[name].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"generator '{name}' is registered but cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, GanPlugin)):
        raise ConfigError(f"generator '{name}' ({found[name].value}) is not a qcalo.plugins.GanPlugin")
    return cls


class GanPlugin:
    """Base class of generator plug-ins: an energy-conditioned GAN.

    `x` below is a batch in the model's own space (after `to_model`), `energy` the primary
    energies in GeV (tensor, shape (B,)), `gen` the loop's torch.Generator (all randomness of a
    step comes from it, so that runs resume bit for bit).
    """

    name = "base"
    defaults: dict[str, Any] = {}  # the plug-in's own (model) config keys and their defaults
    view: View | None = None  # a reduced generator's view of the showers (validation reduces to it)
    not_exportable = ""  # why ONNX cannot hold this generator ("": qcalo.export can write it)

    def __init__(self, config: dict[str, Any], geometry: Geometry, calibration: dict[str, Any]):
        self.config = config
        self.geometry = geometry
        self.calibration = calibration

    @classmethod
    def calibrate(cls, config: dict[str, Any], data: ShowerData, fits: dict[str, Any]) -> dict[str, Any]:
        """Figures taken from the training data once and kept in the checkpoint; `fits` are the
        loop's (`qcalo.fits.fit_data`) of the same data."""
        return {}

    def build(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator)."""
        raise NotImplementedError

    def refit_to_data(self, generator: nn.Module, data: ShowerData, gen: torch.Generator) -> dict[str, float]:
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
