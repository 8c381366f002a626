"""Comparison plots with ratio panels: the reference in black, each candidate in its colour."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qcalo.atomic import atomic_path  # noqa: E402
from qcalo.metrics import distances as D  # noqa: E402
from qcalo.metrics.binning import EnergyBins  # noqa: E402
from qcalo.metrics.observables import CELL_LOG10_EDGES, ShowerFeatures  # noqa: E402

COLUMNS = 6
REF_STYLE = {"color": "black", "lw": 1.6}


def _panels(
    n: int, title: str, ratio: tuple[float, float] = (0.5, 1.5)
) -> tuple[plt.Figure, list[tuple[plt.Axes, plt.Axes]]]:
    """A figure of n (main, ratio) panel pairs, COLUMNS to a row."""
    cols, rows = min(n, COLUMNS), math.ceil(n / COLUMNS)
    width, height = max(3.3 * cols, 6.0), 3.4 * rows + 0.5
    outer_opts = dict(left=0.6 / width + 0.03, right=0.98, bottom=0.5 / height, top=1 - 0.55 / height)
    fig = plt.figure(figsize=(width, height))
    outer = fig.add_gridspec(rows, cols, wspace=0.32, hspace=0.45, **outer_opts)
    pairs = []
    for k in range(n):
        inner = outer[divmod(k, COLUMNS)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.0)
        top = fig.add_subplot(inner[0])
        bottom = fig.add_subplot(inner[1], sharex=top)
        top.tick_params(labelbottom=False)
        bottom.axhline(1.0, color="black", lw=0.8)
        bottom.set_ylim(*ratio)
        bottom.set_yticks([(ratio[0] + 1) / 2, 1.0, (ratio[1] + 1) / 2])
        bottom.tick_params(labelsize=7)
        bottom.set_ylabel("cand / ref", fontsize=7)
        pairs.append((top, bottom))
    fig.suptitle(title)
    return fig, pairs


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full_like(num, np.nan, dtype=np.float64), where=den > 0)


def _stairs(top, bottom, edges, ref_h, cands: dict[str, np.ndarray], colours: dict[str, str]) -> None:
    top.stairs(ref_h, edges, label="reference", **REF_STYLE)
    for name, h in cands.items():
        top.stairs(h, edges, label=name, color=colours[name], lw=1.2)
        bottom.stairs(_ratio(h, ref_h), edges, color=colours[name], lw=1.2)


def _selections(ref: ShowerFeatures, cands: dict[str, ShowerFeatures], bins: EnergyBins):
    """('all energies', masks...) then one entry per energy bin."""
    yield "all energies", np.ones(ref.n, bool), {k: np.ones(c.n, bool) for k, c in cands.items()}
    ib_r = bins.assign(ref.energy)
    ib_c = {k: bins.assign(c.energy) for k, c in cands.items()}
    for b, label in enumerate(bins.labels()):
        yield label, ib_r == b, {k: ib_c[k] == b for k in cands}


def make_plots(
    ref: ShowerFeatures, cands: dict[str, ShowerFeatures], bins: EnergyBins, out: Path
) -> list[Path]:
    """Write every comparison plot into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    colours = {name: f"C{k}" for k, name in enumerate(cands)}
    paths = []
    selections = list(_selections(ref, cands, bins))
    g = ref.geometry

    # Mean normalised shapes along every axis, per energy bin.
    for axis in g.axes:
        kind = "longitudinal" if axis == g.axes[g.depth_axis] else "transverse"
        fig, pairs = _panels(len(selections), f"{kind} shape along {axis} (mean of unit-sum profiles)")
        edges = np.arange(g.shape[g.axis(axis)] + 1)
        for (label, mr, mc), (top, bottom) in zip(selections, pairs, strict=True):
            if mr.sum() == 0:
                continue
            ref_h = D.mean_shape(ref.profiles[axis][mr])
            hs = {k: D.mean_shape(c.profiles[axis][mc[k]]) for k, c in cands.items() if mc[k].any()}
            _stairs(top, bottom, edges, ref_h, hs, colours)
            top.set_yscale("log")
            top.set_title(label, fontsize=9)
            bottom.set_xlabel(f"{axis} (cell)")
        pairs[0][0].legend(fontsize=7)
        paths.append(_save(fig, out / f"shape_{axis}.png"))

    # Sampling fraction against the primary energy.
    fig, ((top, bottom),) = _panels(1, "sampling fraction = deposited / primary energy", ratio=(0.9, 1.1))
    ib_r = bins.assign(ref.energy)
    valid = [b for b in range(len(bins)) if (ib_r == b).any()]
    x = bins.centres[valid]
    r_mean = np.array([ref.sampling_fraction[ib_r == b].mean() for b in valid])
    r_err = np.array([ref.sampling_fraction[ib_r == b].std() / np.sqrt((ib_r == b).sum()) for b in valid])
    top.errorbar(x, r_mean, r_err, fmt="o-", label="reference", **REF_STYLE)
    for name, c in cands.items():
        ib = bins.assign(c.energy)
        m = np.array([c.sampling_fraction[ib == b].mean() if (ib == b).any() else np.nan for b in valid])
        top.plot(x, m, "s--", color=colours[name], label=name)
        bottom.plot(x, m / r_mean, "s--", color=colours[name])
    top.set_ylabel("mean deposited / primary")
    bottom.set_xlabel("primary energy (GeV)")
    top.legend(fontsize=7)
    paths.append(_save(fig, out / "sampling_fraction_vs_energy.png"))

    # 1-D observables and the cell-energy spectrum, all energies and per energy bin.
    scalars_r = ref.scalars()
    scalars_c = {k: c.scalars() for k, c in cands.items()}
    for name in scalars_r:
        fig, pairs = _panels(len(selections), name.replace("_", " "))
        for (label, mr, mc), (top, bottom) in zip(selections, pairs, strict=True):
            if mr.sum() == 0:
                continue
            edges = D.shared_edges(scalars_r[name][mr], 30)
            ref_h = _density(scalars_r[name][mr], edges)
            hs = {k: _density(scalars_c[k][name][mc[k]], edges) for k in cands if mc[k].any()}
            _stairs(top, bottom, edges, ref_h, hs, colours)
            top.set_title(label, fontsize=9)
        pairs[0][0].legend(fontsize=7)
        paths.append(_save(fig, out / f"hist_{name}.png"))

    fig, pairs = _panels(len(selections), "single-cell energy spectrum (cells above threshold)")
    for (label, mr, mc), (top, bottom) in zip(selections, pairs, strict=True):
        if mr.sum() == 0:
            continue
        ref_h = D.unit_sum(ref.cell_hist[mr].sum(axis=0))
        hs = {k: D.unit_sum(c.cell_hist[mc[k]].sum(axis=0)) for k, c in cands.items() if mc[k].any()}
        _stairs(top, bottom, CELL_LOG10_EDGES, ref_h, hs, colours)
        top.set_yscale("log")
        top.set_title(label, fontsize=9)
        bottom.set_xlabel("log10(cell energy / GeV)")
    pairs[0][0].legend(fontsize=7)
    paths.append(_save(fig, out / "cell_energy.png"))
    return paths


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return D.unit_sum(D.histogram(values, edges))


def validation_figure(
    ref: ShowerFeatures, gen: ShowerFeatures, bins: EnergyBins, path: Path, title: str = ""
) -> Path:
    """The training loop's per-epoch picture: longitudinal and first transverse mean shapes, and
    the sampling fraction against the primary energy, generated vs held-out data."""
    g = ref.geometry
    axes = [g.axes[g.depth_axis], *(g.axes[i] for i in g.transverse_axes[:1])]
    fig, pairs = _panels(len(axes) + 1, title)
    colours = {"generated": "C1"}
    for axis, (top, bottom) in zip(axes, pairs, strict=False):
        edges = np.arange(ref.profiles[axis].shape[1] + 1)
        _stairs(
            top,
            bottom,
            edges,
            D.mean_shape(ref.profiles[axis]),
            {"generated": D.mean_shape(gen.profiles[axis])},
            colours,
        )
        top.set_yscale("log")
        top.set_title(f"shape along {axis}", fontsize=9)
        bottom.set_xlabel(f"{axis} (cell)")
    top, bottom = pairs[-1]
    ib_r, ib_g = bins.assign(ref.energy), bins.assign(gen.energy)
    valid = [b for b in range(len(bins)) if (ib_r == b).any() and (ib_g == b).any()]
    r = np.array([ref.sampling_fraction[ib_r == b].mean() for b in valid])
    f = np.array([gen.sampling_fraction[ib_g == b].mean() for b in valid])
    top.plot(bins.centres[valid], r, "o-", label="held-out data", **REF_STYLE)
    top.plot(bins.centres[valid], f, "s--", color="C1", label="generated")
    bottom.plot(bins.centres[valid], f / r, "s--", color="C1")
    top.set_title("deposited / primary energy", fontsize=9)
    bottom.set_xlabel("primary energy (GeV)")
    top.legend(fontsize=7)
    return _save(fig, path)
