"""A small generator plug-in: each shower is the outer product of three profiles (x, y, depth)
times a total energy, from one MLP; a second MLP judges the same four things of a shower.
Showing how a generator joins qcalo: docs/plugins.md walks through it."""

import torch
from torch import nn
from torch.nn import functional as F

from qcalo.fits import polyval_log
from qcalo.plugins import GanPlugin


def features(cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """What the discriminator sees: the three profiles (shares), log(deposit / E), ln E."""
    total = cells.sum(dim=(1, 2, 3)).clamp_min(1e-9)
    profiles = [cells.sum(dim=dims) / total[:, None] for dims in ((2, 3), (1, 3), (1, 2))]
    return torch.cat([*profiles, torch.log(total / energy)[:, None], torch.log(energy)[:, None]], 1)


class OuterGenerator(nn.Module):
    def __init__(self, inputs: int, hidden: int, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(
            nn.Linear(inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, sum(shape) + 1)
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        out = self.net(latent)
        x, y, z = (torch.softmax(p, dim=1) for p in out[:, :-1].split(self.shape, dim=1))
        shower = torch.einsum("bi,bj,bk->bijk", x, y, z)
        return shower * torch.exp(0.1 * out[:, -1])[:, None, None, None]  # x the sampling fraction's spread


class OuterPlugin(GanPlugin):
    name = "outer"
    defaults = {"outer_noise": 8, "outer_hidden": 64}  # model keys only; loop keys live in qcalo.config

    @classmethod
    def calibrate(cls, config, data, fits):
        return {"sampling_fraction": fits["sampling_fraction"]}  # kept in the checkpoint

    def build(self):
        width = self.config["outer_hidden"]
        g = OuterGenerator(self.noise_size + 1, width, self.geometry.shape)
        d = nn.Sequential(
            nn.Linear(sum(self.geometry.shape) + 2, width), nn.LeakyReLU(0.2), nn.Linear(width, 1)
        )
        return g, d

    @property
    def noise_size(self):
        return self.config["outer_noise"]

    def condition(self, noise, energy):
        return torch.cat([noise, torch.log(energy / 100)[:, None]], dim=1)

    def showers(self, x, energy):  # the model's unit shower -> GeV
        return x * (polyval_log(self.calibration["sampling_fraction"], energy) * energy)[:, None, None, None]

    def to_model(self, cells, energy):
        return (
            cells / (polyval_log(self.calibration["sampling_fraction"], energy) * energy)[:, None, None, None]
        )

    def d_loss(self, disc, x, energy, real, gen):
        logits = disc(features(self.showers(x, energy), energy)).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))
        return loss, {"bce": loss.item()}

    def g_loss(self, disc, fake, energy, gen, real=None):
        logits = disc(features(self.showers(fake, energy), energy)).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return loss, {"bce": loss.item()}
