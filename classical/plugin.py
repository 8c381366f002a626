"""The classical generators as training-loop plug-ins: Conv3D (3DGAN) and Conv2D, 3DGAN losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from classical.conv2d import Discriminator2D, Generator2D
from classical.conv3d import Discriminator3D, Generator3D
from classical.losses import gan3d_loss, profile_distance, real_fake_labels
from qcalo.data.dataset import ShowerData
from qcalo.errors import ConfigError, check_choice
from qcalo.fits import polyval_log
from qcalo.plugins import GanPlugin

# how the primary energy enters the generator: z E / yscale (the 3DGAN, EcalEnergyGan) or
# [E / yscale, z] (its angle versions), where a low-energy input no longer nearly vanishes
ENERGY_INPUTS = ("product", "concat")
# the model space: showers as they are (the 3DGAN) or per unit of primary energy (cells x xscale /
# (E / yscale): a 100 GeV shower is the same in both), see _Gan3DLossPlugin
OUTPUT_SCALES = ("none", "energy")


class _Gan3DLossPlugin(GanPlugin):
    """Shared by Conv3D and Conv2D: the 3DGAN's preprocessing, conditioning and losses.

    Cells below `threshold` GeV are zeroed, multiplied by `xscale` and raised to `cell_power`
    (1: the 3DGAN's linear cells; < 1 narrows the range between a 10 and a 100 GeV shower, and
    between a shower's core and its first layers, that the discriminator sees); the latent vector is
    N(0, 1)^latent_size times E / yscale (`energy_input: product`, the 3DGAN's EcalEnergyGan) or
    E / yscale followed by N(0, 1)^(latent_size - 1) (`concat`, as its later angle versions); the
    discriminator learns real/fake (BCE), regresses E / yscale (MAPE) and the generator is also
    pulled towards the ECAL sum expected from the data's sampling fraction (MAPE).

    With `output_scale: energy` both networks work on showers per unit of primary energy (cells
    divided by E / yscale before the power): the generator's deposit is proportional to E from its
    first step instead of a 250x range it must learn (the 3DGAN's Conv3D learnt it too flat below
    20 GeV), and the discriminator, no longer able to read E from the amplitude, regresses it from
    the shape, which ties the shower depth to the energy.
    """

    defaults = {
        "latent_size": 200,
        "xscale": 100.0,  # the 3DGAN's units: cells (GeV) x 100, energies / 100
        "yscale": 100.0,
        "threshold": 1e-6,  # cells below it (GeV) are zeroed
        "cell_power": 0.5,  # the networks see (cells x xscale)^p (3DGAN: 1): low energies stay visible
        "gen_weight": 2.0,  # loss weights: BCE, MAPE(energy), MAPE(ECAL sum) (the 3DGAN's 2, 0.1, 0.1)
        "aux_weight": 0.1,
        "ecal_weight": 0.3,  # above the 3DGAN's 0.1: short runs keep the sampling fraction with it
        "flip_prob": 0.05,  # the 3DGAN's BitFlip of real/fake labels
        "output_scale": "none",  # "energy": both networks work on showers per unit of primary energy
        "aux_on_fakes": True,  # the 3DGAN's; false: the energy regression learns on real showers only
        "profile_weight": 0.0,  # not the 3DGAN's: x the % of energy put elsewhere than the real batch
    }
    generator_cls: type[nn.Module] = Generator3D
    discriminator_cls: type[nn.Module] = Discriminator3D

    def __init__(self, config: dict[str, Any], geometry, calibration: dict[str, Any]):
        super().__init__(config, geometry, calibration)
        if geometry.shape != (25, 25, 25):
            raise ConfigError(
                f"generator '{self.name}' makes 25 x 25 x 25 showers; the data has {geometry.describe()}"
            )
        if not 0.0 < config["cell_power"] <= 1.0:
            raise ConfigError(f"cell_power {config['cell_power']}: expected 0 < p <= 1")
        check_choice("energy_input", config["energy_input"], ENERGY_INPUTS)
        check_choice("output_scale", config["output_scale"], OUTPUT_SCALES)
        self.weights = (config["gen_weight"], config["aux_weight"], config["ecal_weight"])

    @classmethod
    def calibrate(cls, config: dict[str, Any], data: ShowerData, fits: dict[str, Any]) -> dict[str, Any]:
        return {"sampling_fraction": fits["sampling_fraction"]}

    def build(self) -> tuple[nn.Module, nn.Module]:
        return self.generator_cls(self.config["latent_size"]), self.discriminator_cls()

    def to_model(self, cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        cells = torch.where(cells < self.config["threshold"], torch.zeros_like(cells), cells)
        return self._power(cells * self._scale(energy), self.config["cell_power"])

    def showers(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return self._power(x, 1.0 / self.config["cell_power"]) / self._scale(energy)

    def _scale(self, energy: torch.Tensor) -> torch.Tensor | float:
        """GeV -> model units: xscale, divided by E / yscale with `output_scale: energy`."""
        if self.config["output_scale"] == "none":
            return self.config["xscale"]
        per_gev = self.config["xscale"] * self.config["yscale"] / energy
        return per_gev.view(-1, *[1] * len(self.geometry.shape))

    @staticmethod
    def _power(x: torch.Tensor, p: float) -> torch.Tensor:
        return x if p == 1.0 else x.pow(p)

    def _outputs(self, disc: nn.Module, x: torch.Tensor, energy: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The discriminator's (probability, energy, ECAL sum), the sum over linear cells (GeV x
        xscale): with `cell_power` != 1 or `output_scale: energy` the discriminator's own sum of its
        input is not the energy."""
        prob, aux, ecal = disc(x)
        if self.config["cell_power"] != 1.0 or self.config["output_scale"] != "none":
            ecal = self.showers(x, energy).sum(dim=tuple(range(1, x.dim()))) * self.config["xscale"]
        return prob, aux, ecal

    @property
    def noise_size(self) -> int:
        return self.config["latent_size"] - (self.config["energy_input"] == "concat")

    def condition(self, noise: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        e = (energy / self.config["yscale"])[:, None]
        return noise * e if self.config["energy_input"] == "product" else torch.cat([e, noise], dim=1)

    def expected_ecal(self, energy: torch.Tensor) -> torch.Tensor:
        return polyval_log(self.calibration["sampling_fraction"], energy) * energy * self.config["xscale"]

    def d_loss(self, disc, x, energy, real, gen):
        c = self.config
        labels = real_fake_labels(len(x), real, c["flip_prob"], gen, x.device)
        outputs = self._outputs(disc, x, energy)
        ecal_target = outputs[2].detach() if real else self.expected_ecal(energy)
        weights = self.weights if real or c["aux_on_fakes"] else (self.weights[0], 0.0, self.weights[2])
        return gan3d_loss(outputs, labels, energy / c["yscale"], ecal_target, weights)

    def g_loss(self, disc, fake, energy, gen, real=None):
        labels = torch.ones(len(fake), device=fake.device)
        target = energy / self.config["yscale"]
        loss, parts = gan3d_loss(
            self._outputs(disc, fake, energy), labels, target, self.expected_ecal(energy), self.weights
        )
        if self.config["profile_weight"] and real is not None:
            distance = profile_distance(self.showers(fake, energy), self.showers(*real))
            loss = loss + self.config["profile_weight"] * distance
            parts["profile_tv"] = distance.item()
        return loss, parts


class Conv3DPlugin(_Gan3DLossPlugin):
    name = "conv3d"
    # [E/100, z], as the 3DGAN's angle versions: with z E/100 a low-energy shower is the response
    # to a nearly vanishing input
    defaults = {**_Gan3DLossPlugin.defaults, "energy_input": "concat"}


class Conv2DPlugin(_Gan3DLossPlugin):
    name = "conv2d"
    generator_cls = Generator2D
    discriminator_cls = Discriminator2D
    defaults = {**_Gan3DLossPlugin.defaults, "energy_input": "product"}  # z E/100, as the 3DGAN
