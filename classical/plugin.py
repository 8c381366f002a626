"""The classical generators as training-loop plug-ins: Conv3D (3DGAN) and Conv2D, 3DGAN losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from classical.conv2d import Discriminator2D, Generator2D
from classical.conv3d import Discriminator3D, Generator3D
from classical.losses import gan3d_loss, real_fake_labels
from qcalo.data.dataset import ShowerData
from qcalo.errors import ConfigError
from qcalo.generators import GanPlugin, data_sampling_fraction, sampling_fraction


class _Gan3DLossPlugin(GanPlugin):
    """Shared by Conv3D and Conv2D: the 3DGAN's preprocessing, conditioning and losses.

    Cells below `threshold` GeV are zeroed and multiplied by `xscale`; the latent vector is
    N(0, 1)^latent_size times E / yscale; the discriminator learns real/fake (BCE), regresses
    E / yscale (MAPE) and the generator is also pulled towards the ECAL sum expected from the
    data's sampling fraction (MAPE).
    """

    defaults = {
        "latent_size": 200,
        "xscale": 100.0,
        "yscale": 100.0,
        "threshold": 1e-6,
        "gen_weight": 2.0,
        "aux_weight": 0.1,
        "ecal_weight": 0.1,
        "label_smoothing": 0.0,
        "flip_prob": 0.05,
        # loop settings: training showers drawn ~E^-0.5 (the few low energies of a flat spectrum
        # train more often), and the best checkpoint judged, as in the 3DGAN's validation, by the
        # mean sampling fraction and the shapes: a short training's spread is 2-4x the data's and
        # swings with it from epoch to epoch, so a spread term would decide alone (measured: it
        # kept a Conv2D checkpoint 18 % off at 5 GeV over one within 7.2 % at all 5 scan energies);
        # the mean depth at the scan energies counts, as the shapes' MSE over wide energy bins
        # hardly sees where the maximum sits at a given energy
        "sample_energy_power": 0.5,
        "score_spread_weight": 0.0,
        "score_depth_weight": 1.0,
    }
    generator_cls: type[nn.Module] = Generator3D
    discriminator_cls: type[nn.Module] = Discriminator3D

    def __init__(self, config: dict[str, Any], geometry, calibration: dict[str, Any]):
        super().__init__(config, geometry, calibration)
        if geometry.shape != (25, 25, 25):
            raise ConfigError(
                f"generator '{self.name}' makes 25 x 25 x 25 showers; the data has {geometry.describe()}"
            )
        self.weights = (config["gen_weight"], config["aux_weight"], config["ecal_weight"])

    @classmethod
    def calibrate(cls, config: dict[str, Any], data: ShowerData) -> dict[str, Any]:
        return {"sampling_fraction": data_sampling_fraction(data)}

    def build(self) -> tuple[nn.Module, nn.Module]:
        return self.generator_cls(self.config["latent_size"]), self.discriminator_cls()

    def to_model(self, cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        cells = torch.where(cells < self.config["threshold"], torch.zeros_like(cells), cells)
        return cells * self.config["xscale"]

    def showers(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return x / self.config["xscale"]

    @property
    def noise_size(self) -> int:
        return self.config["latent_size"]

    def condition(self, noise: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return noise * (energy / self.config["yscale"])[:, None]

    def expected_ecal(self, energy: torch.Tensor) -> torch.Tensor:
        return (
            sampling_fraction(self.calibration["sampling_fraction"], energy) * energy * self.config["xscale"]
        )

    def d_loss(self, disc, x, energy, real, gen):
        c = self.config
        labels = real_fake_labels(len(x), real, c["label_smoothing"], c["flip_prob"], gen, x.device)
        outputs = disc(x)
        ecal_target = outputs[2].detach() if real else self.expected_ecal(energy)
        return gan3d_loss(outputs, labels, energy / c["yscale"], ecal_target, self.weights)

    def g_loss(self, disc, fake, energy, gen, real=None):
        labels = torch.ones(len(fake), device=fake.device)
        target = energy / self.config["yscale"]
        return gan3d_loss(disc(fake), labels, target, self.expected_ecal(energy), self.weights)


class Conv3DPlugin(_Gan3DLossPlugin):
    name = "conv3d"


class Conv2DPlugin(_Gan3DLossPlugin):
    name = "conv2d"
    generator_cls = Generator2D
    discriminator_cls = Discriminator2D
