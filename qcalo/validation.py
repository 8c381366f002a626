"""Validation during training: generated against held-out showers with qcalo.metrics, an energy
scan against the training data's fits, and the one score that picks best.pt.

A flat held-out sample has few low-energy showers and wide bins, so a score blind there lets
the low-energy end drift unnoticed; the scan generates at 5 energies spread log-uniformly over
the training range and compares with the fits (`qcalo.fits.fit_data`) of all training showers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qcalo.data.dataset import ShowerData
from qcalo.data.views import total_energy
from qcalo.fits import at_energy
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import MIN_PER_BIN, compare
from qcalo.metrics.observables import ShowerFeatures, compute_features, relative_depth, transverse_rms
from qcalo.plugins import GanPlugin

SCAN_POINTS = 5


@dataclass
class Reference:
    """Held-out showers as validation compares with them: features and energy bins."""

    features: ShowerFeatures
    bins: EnergyBins


def reference(data: ShowerData, plugin: GanPlugin, n: int) -> Reference:
    """The first `n` held-out showers, reduced to the plug-in's view, in up to 5 energy bins that
    each hold enough showers for the per-bin metrics."""
    n = min(n, len(data))
    cells, energy = data.read(limit=n)
    ref = compute_features(ShowerData.from_arrays(cells, energy, data.geometry), view=plugin.view)
    return Reference(ref, EnergyBins.from_energies(ref.energy, max(1, min(5, n // (2 * MIN_PER_BIN)))))


def headline_metrics(ref: ShowerFeatures) -> list[str]:
    axis = ref.geometry.axes[ref.geometry.depth_axis]
    return [
        "mse_shapes",
        "mre_sampling_fraction",
        "re_spread_sampling_fraction",
        f"kl_shape_{axis}",
        f"max_re_pixel_mean_{axis}",
        f"w1_pixels_{axis}",
        "mre_deposited_energy",
        "mse_corr_longitudinal",
    ]


def score(scores: dict[str, float], spread_ratio: float, spread_weight: float, depth_weight: float) -> float:
    """Lower is better: the sampling fraction's relative error (the worse of the held-out
    sample's and the scan's), the RMS of the shapes, |ln| of the ratio of the sampling
    fraction's spreads (symmetric, and bounded enough that a 3x too wide early spread does not
    outweigh everything else; the worse of sample and scan) and the scan's worst mean depth."""
    sf_error = max(scores["mre_sampling_fraction"], scores.get("sf_scan_worst", 0.0))
    spread = max(abs(math.log(max(spread_ratio, 1e-6))), scores.get("spread_scan_worst", 0.0))
    return (
        sf_error
        + math.sqrt(scores["mse_shapes"])
        + spread_weight * spread
        + depth_weight * scores.get("depth_scan_worst", 0.0)
    )


def energy_scan(
    plugin: GanPlugin, generator: nn.Module, fits: dict[str, Any], n: int, seed: int, device: torch.device
) -> dict[str, float]:
    """Relative errors of the generated sampling fraction's mean, log-ratio of its spread, and
    relative errors of the mean depth and width, at 5 energies, against the data's fits."""
    if not n:
        return {}
    gen = torch.Generator().manual_seed(seed)
    geometry = plugin.output_geometry
    width = fits["width"] is not None and geometry.shape == plugin.geometry.shape
    out = {}
    for e in np.geomspace(*fits["energy_range"], SCAN_POINTS + 2)[1:-1]:
        energy = torch.full((n,), float(e))
        cells = plugin.generate(generator, energy.to(device), gen).cpu().numpy()
        sf = total_energy(cells, geometry) / e
        spread = max(at_energy(fits["sampling_fraction_spread"], e), 1e-12)
        out[f"sf_scan_{e:.3g}GeV"] = float(sf.mean() / at_energy(fits["sampling_fraction"], e) - 1)
        out[f"spread_scan_{e:.3g}GeV"] = float(np.log(max(sf.std(), 1e-12) / spread))
        depth = relative_depth(cells, geometry).mean()
        out[f"depth_scan_{e:.3g}GeV"] = float(depth / at_energy(fits["depth"], e) - 1)
        if width:
            w = transverse_rms(cells, geometry, fits["width_axis"]).mean()
            out[f"width_scan_{e:.3g}GeV"] = float(w / at_energy(fits["width"], e) - 1)
    for name in ("sf", "spread", "depth", "width"):
        errors = [abs(v) for k, v in out.items() if k.startswith(f"{name}_scan_")]
        if errors:
            out[f"{name}_scan_worst"] = max(errors)
    return out


def validate(
    plugin: GanPlugin,
    generator: nn.Module,
    ref: Reference,
    fits: dict[str, Any],
    config: dict[str, Any],
    epoch: int,
    device: torch.device,
    plot: Path | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Scores of a generator (in eval mode, generating weights) against the reference, the scan
    and `score`; with `plot`, the validation figure there. Seeds derive from the run's seed and
    the epoch, so a resumed run validates as the uninterrupted one."""
    gen = torch.Generator().manual_seed(config["seed"] * 7919 + epoch)
    energy = torch.as_tensor(ref.features.energy, dtype=torch.float32)
    cells = torch.cat([plugin.generate(generator, e.to(device), gen).cpu() for e in energy.split(256)])
    scan_seed = config["seed"] * 7919 + epoch + 1
    scan = energy_scan(plugin, generator, fits, config["val_scan_showers"], scan_seed, device)
    fake = compute_features(
        ShowerData.from_arrays(cells.numpy(), ref.features.energy, plugin.output_geometry)
    )
    res = compare(ref.features, fake, ref.bins, classifier=False)
    names = headline_metrics(ref.features)
    scores: dict[str, Any] = {name: res[name]["overall"] for name in names}
    scores.update(scan)
    scores["score"] = score(
        scores,
        res["ratio_spread_sampling_fraction"]["overall"],
        config["score_spread_weight"],
        config["score_depth_weight"],
    )
    scores["per_bin"] = {
        "energy_bins": ref.bins.labels(),
        **{name: [None if np.isnan(v) else v for v in res[name]["per_bin"]] for name in names},
    }
    if plot is not None:
        from qcalo.metrics.plots import validation_figure

        validation_figure(ref.features, fake, ref.bins, plot, title=title)
    return scores
