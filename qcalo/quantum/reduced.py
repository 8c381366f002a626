"""Reduced-view GANs: the representation, discriminator and losses shared by every generator
that makes a few pixels of a shower rather than its cells (the quantum generator and its
classical twin), so that they differ in the generator network only.

Showers are reduced to a view (default: the 8-pixel longitudinal profile) and split into what
a small generator can produce and a discriminator can compare at every energy:

    x = [q * pixels,  u = (ln(deposited / E) - mu(E)) / sigma(E)],  q_k ~ share_k / m_k(E)

mu and sigma are fitted to the training data (quadratic in ln E), m(E), the mean pixel shares,
cubic in ln E (`profile_prior`; without it q = the shares); all are kept in the checkpoint. So
u is close to a standard variable from 2 to 500 GeV although the resolution changes 10x, and q
(normalised to sum 1) is near uniform at every energy although the shower maximum moves by
a third of the depth: the generator learns how showers deviate from the mean, and the energy
dependence of the mean profile comes from all the data at once, not only from the few showers
of a flat spectrum near each energy. The discriminator sees log q, u and f(E) = the primary
energy mapped log-linearly onto [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from qcalo.data.dataset import ShowerData
from qcalo.data.views import View
from qcalo.errors import ConfigError
from qcalo.fits import deposited_energies, fit_log_energy, polyval_log
from qcalo.plugins import GanPlugin


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    wx: torch.Tensor | None = None,
    wy: torch.Tensor | None = None,
    scales: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0),
) -> torch.Tensor:
    """Maximum mean discrepancy of two (optionally weighted) samples with a sum of Gaussian
    kernels (biased estimate)."""
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in scales)
    n = len(x)
    wx = torch.full((n,), 1.0 / n, device=x.device) if wx is None else wx / wx.sum()
    wy = torch.full((len(y),), 1.0 / len(y), device=y.device) if wy is None else wy / wy.sum()
    return wx @ k[:n, :n] @ wx + wy @ k[n:, n:] @ wy - 2 * wx @ k[:n, n:] @ wy


def fit_mean_shares(data: ShowerData, view: View, degree: int = 3) -> list[list[float]]:
    """Each pixel's share of the shower as a polynomial in ln E (highest power first, one list
    of pixel coefficients per power), least squares over every shower: a smooth mean profile
    at every energy, also where a flat spectrum has few showers (2-20 GeV: ~4 % of 2-500)."""
    log_e, shares = [], []
    for cells, e in data.chunks():
        pix = view.apply(cells, data.geometry).reshape(len(cells), -1).astype(np.float64)
        shares.append(pix / np.maximum(pix.sum(axis=1, keepdims=True), 1e-300))
        log_e.append(np.log(e))
    x, y = np.concatenate(log_e), np.concatenate(shares)
    return np.polyfit(x, y, min(degree, len(np.unique(x)) - 1)).tolist()


class Discriminator(nn.Module):
    """MLP on [x, f(E)]: real/fake logit, conditioned on the primary energy.

    It also sees the batch's per-feature standard deviations (ProGAN's minibatch-stddev), so a
    generator that collapses to one profile per energy is told apart at once.
    """

    def __init__(self, features: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        features = 2 * features - 1
        for width in hidden:
            layers += [nn.Linear(features, width), nn.LeakyReLU(0.2)]
            features = width
        self.net = nn.Sequential(*layers, nn.Linear(features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x[:, :-1].std(dim=0, keepdim=True).expand(len(x), -1) if len(x) > 1 else x[:, :-1] * 0
        return self.net(torch.cat([x, spread], dim=1)).squeeze(-1)


class ReducedGanPlugin(GanPlugin):
    """A reduced-view GAN: subclasses supply `build` (the generator; `reduced_discriminator`
    gives the shared one) and `noise_size`; representation, conditioning and losses are here."""

    defaults = {
        "view": "longitudinal:8",  # the reduced showers: longitudinal:N or transverse:AXIS:N
        "disc_hidden": [64, 64],
        "adv_weight": 0.1,  # generator loss = adv_weight * BCE(D(fake), real) ...
        "mmd_weight": 1.0,  # ... + mmd_weight * MMD(real, fake)
        "mmd_energy_scale": 6.0,  # f(E) times this in the MMD: larger compares nearer energies only
        "mmd_energy_power": 0.5,  # weight events by E^-power in the MMD (> 0: the rare low energies of
        # a flat spectrum count more)
        "profile_prior": True,  # pixel values = shares relative to the data's mean profile at E
        # (a cubic fit in ln E kept in the checkpoint): the generator learns the deviations
    }

    def __init__(self, config: dict[str, Any], geometry, calibration: dict[str, Any]):
        super().__init__(config, geometry, calibration)
        self.view = View.parse(config["view"])
        out = self.view.output_geometry(geometry)
        if len(out.shape) != 1:
            raise ConfigError(f"view '{config['view']}' must reduce showers to one axis")
        self.pixels = out.shape[0]

    # -- calibration: the energy dependence of the total deposited energy and the mean profile

    @classmethod
    def calibrate(cls, config: dict[str, Any], data: ShowerData, fits: dict[str, Any]) -> dict[str, Any]:
        e, d = deposited_energies(data)
        if np.any(d <= 0):
            raise ConfigError(f"{(d <= 0).sum()} training showers deposit no energy; cannot calibrate")
        log_ratio = np.log(d / e)
        out = {}
        if config["profile_prior"]:
            out["share_fit"] = fit_mean_shares(data, View.parse(config["view"]))
        return {
            **out,
            "energy_range": [float(e.min()), float(e.max())],
            "log_ratio_mean": fit_log_energy(e, log_ratio),
            "log_ratio_std": fit_log_energy(e, log_ratio, stat=np.std),
        }

    def _mu_sigma(self, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = energy.to(torch.float64)
        mu = polyval_log(self.calibration["log_ratio_mean"], e)
        sigma = polyval_log(self.calibration["log_ratio_std"], e).clamp_min(1e-3)
        return mu.to(energy.dtype), sigma.to(energy.dtype)

    def _prior(self, energy: torch.Tensor) -> torch.Tensor | None:
        """The data's mean pixel shares at these energies (B, pixels), or None without a prior."""
        fit = self.calibration.get("share_fit")
        if fit is None:
            return None
        coeffs = torch.tensor(fit, dtype=torch.float64, device=energy.device)  # (powers, pixels)
        m = polyval_log(coeffs, energy.to(torch.float64)[:, None]).clamp_min(1e-4)
        return (m / m.sum(dim=1, keepdim=True)).to(torch.float32)

    def energy_feature(self, energy: torch.Tensor) -> torch.Tensor:
        lo, hi = (math.log(v) for v in self.calibration["energy_range"])
        return 2 * (torch.log(energy) - lo) / max(hi - lo, 1e-6) - 1

    # -- networks and spaces

    def reduced_discriminator(self) -> nn.Module:
        return Discriminator(self.pixels + 2, list(self.config["disc_hidden"]))

    def to_model(self, cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        pix = self.view.apply(cells, self.geometry).reshape(len(cells), -1).to(torch.float32)
        total = pix.sum(dim=1).clamp_min(1e-12)
        u = self.standard_total(total, energy)
        shares = pix / total[:, None]
        prior = self._prior(energy)
        if prior is not None:
            shares = shares / prior
            shares = shares / shares.sum(dim=1, keepdim=True)
        return torch.cat([shares * self.pixels, u[:, None]], dim=1)

    def standard_total(self, total: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """u: ln(deposited / E) standardised by the data's fits of its mean and spread at E."""
        mu, sigma = self._mu_sigma(energy)
        return ((torch.log(total / energy) - mu) / sigma).clamp(-10, 10)

    def showers(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        mu, sigma = self._mu_sigma(energy)
        total = energy * torch.exp(mu + sigma * x[:, -1])
        shares = x[:, :-1] / self.pixels
        prior = self._prior(energy)
        if prior is not None:
            shares = shares * prior
            shares = shares / shares.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return shares * total[:, None]

    def condition(self, noise: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return torch.cat([noise, self.energy_feature(energy)[:, None]], dim=1)

    # -- losses

    def _disc_input(self, x: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """What the discriminator and the MMD see: log q (relative errors of small pixels count
        as much as of large ones, as in KL), u, and f(E)."""
        shares = torch.log(x[:, :-1].clamp_min(1e-3))
        return torch.cat([shares, x[:, -1:], self.energy_feature(energy)[:, None]], dim=1)

    def d_loss(self, disc, x, energy, real, gen):
        target = torch.full((len(x),), 1.0 if real else 0.0, device=x.device)
        logits = disc(self._disc_input(x, energy))
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, {"bce": loss.item()}

    def g_loss(self, disc, fake, energy, gen, real=None):
        target = torch.ones(len(fake), device=fake.device)
        logits = disc(self._disc_input(fake, energy))
        bce = F.binary_cross_entropy_with_logits(logits, target)
        parts = {"bce": bce.item()}
        loss = self.config["adv_weight"] * bce
        if self.config["mmd_weight"] and real is not None:
            scale = torch.ones(fake.shape[1] + 1, device=fake.device)
            scale[-1] = self.config["mmd_energy_scale"]
            f, r = self._disc_input(fake, energy) * scale, self._disc_input(*real) * scale
            # the whole event, and (total energy, primary energy) alone: in 10 dimensions the
            # kernel hardly sees the spread of the one total-energy coordinate
            power = self.config["mmd_energy_power"]
            wf, wr = (e.to(torch.float32) ** -power if power else None for e in (energy, real[1]))
            term = mmd(f, r, wf, wr) + mmd(f[:, -2:], r[:, -2:], wf, wr)
            loss = loss + self.config["mmd_weight"] * term
            parts["mmd"] = term.item()
        return loss, parts
