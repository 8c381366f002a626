"""Evaluation report: a reference and candidates in, metrics.json, summary.md and plots out.

Used by `python -m qcalo.evaluate`, by the training loop's validation and by the examples, so that
every generator is judged by the same code on the same observables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qcalo import __version__
from qcalo.atomic import write_text
from qcalo.data.dataset import ShowerData
from qcalo.data.views import View
from qcalo.errors import DataError, QcaloError
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import MIN_PER_BIN, with_noise_floor
from qcalo.metrics.observables import ShowerFeatures, compute_features

DEFINITIONS = {
    "kl_*": "KL(reference || candidate) in nats; unit-sum histograms smoothed by +1e-6 per bin",
    "js_*": "Jensen-Shannon divergence in bits (0 identical, 1 disjoint)",
    "sep_*": "CaloChallenge separation power 1/2 sum (h1-h2)^2/(h1+h2) of unit-sum histograms",
    "w1_*": "1-Wasserstein distance, in the observable's unit (cell energy: log10 GeV)",
    "*_shape_AXIS": "on the mean of unit-sum profiles along AXIS, per energy bin",
    "mse_shape_AXIS": "mean squared difference of mean shapes, in units of the reference peak",
    "mse_shapes": "mse_shape averaged over the axes (3DGAN-style shower-shape MSE)",
    "mre_shape_AXIS": "mean relative error of the mean shape, bins above 1e-3 of the peak",
    "mre_sampling_fraction": "|mean candidate - mean reference| / mean reference of deposited/primary",
    "max_re_pixel_mean_AXIS": "largest relative error of a bin's mean energy along AXIS (above 1e-3 of peak)",
    "w1_pixels_AXIS": "1-Wasserstein distance of each bin's share of the shower along AXIS, mean over bins",
    "mre_deposited_energy": "relative error of the mean deposited (total) energy",
    "ratio_spread_sampling_fraction": "std candidate / std reference of deposited/primary (resolution)",
    "re_spread_sampling_fraction": "|ratio_spread_sampling_fraction - 1|",
    "corr_longitudinal": "mean |difference| of the correlation matrices of longitudinal bins",
    "mse_corr_longitudinal": "mean squared difference of those correlation matrices (off-diagonal)",
    "fpd": "Frechet physics distance at infinite N (Kansal et al.), standardised high-level features",
    "kpd": "kernel physics distance: median unbiased MMD^2, cubic polynomial kernel",
    "auc_high_level": "held-out ROC AUC of an MLP on high-level features (0.5: indistinguishable)",
    "auc_cells": "held-out ROC AUC of an MLP on log normalised cells (0.5: indistinguishable)",
    "overall": "per-bin metrics: mean over energy bins populated by both samples",
    "floor": "the same metric between disjoint halves of the reference, same sample sizes",
    "above_floor": "mean > floor + max(3 spread, 5 % of floor); AUC: > 0.5 + 3 null sigma",
}

HEADLINE = [
    "mse_shapes",
    "kl_shape_{depth}",
    "kl_shape_{t0}",
    "max_re_pixel_mean_{depth}",
    "w1_pixels_{depth}",
    "mre_sampling_fraction",
    "re_spread_sampling_fraction",
    "w1_sampling_fraction",
    "w1_mean_{depth}",
    "w1_width_{depth}",
    "w1_width_{t0}",
    "w1_occupancy",
    "js_cell_energy",
    "corr_longitudinal",
    "mse_corr_longitudinal",
    "fpd",
    "kpd",
    "auc_high_level",
    "auc_cells",
]


@dataclass
class Sample:
    name: str
    data: ShowerData
    features: ShowerFeatures


def load_sample(
    name: str, data: ShowerData, threshold: float, cell_sample: int, seed: int, view: View | None = None
) -> Sample:
    return Sample(name, data, compute_features(data, threshold, cell_sample, seed, view=view))


def check_geometry(ref: ShowerData, cand: ShowerData, name: str, view: View | None = None) -> None:
    """The candidate must have the reference's geometry (after reducing both to `view`)."""
    rg, cg = ref.geometry, cand.geometry
    if view is not None:
        rg, cg = view.output_geometry(rg), view.output_geometry(cg)
    if rg.shape == cg.shape and rg.axes == cg.axes and rg.depth_axis == cg.depth_axis:
        return
    hint = ""
    inferred = View.infer(rg, cg)
    if inferred is not None:
        hint = f"; to compare at the candidate's resolution pass --view {inferred.spec()}"
    raise DataError(
        cand.files[0].path,
        f"candidate '{name}' has geometry {cg.describe()}; expected the reference's {rg.describe()} "
        f"({ref.files[0].path}){hint}",
    )


def check_energies(ref: Sample, cand: Sample, bins: EnergyBins) -> None:
    """At least one energy bin with enough showers of both samples, else a clear error."""
    ib_r, ib_c = bins.assign(ref.features.energy), bins.assign(cand.features.energy)
    shared = [
        b
        for b in range(len(bins))
        if (ib_r == b).sum() >= 2 * MIN_PER_BIN and (ib_c == b).sum() >= MIN_PER_BIN
    ]
    if not shared:
        e_r, e_c = ref.features.energy, cand.features.energy
        raise DataError(
            cand.data.files[0].path,
            f"candidate '{cand.name}' shares no energy bin with the reference (>= {MIN_PER_BIN} showers "
            f"each): reference {e_r.min():.4g}-{e_r.max():.4g} GeV, candidate {e_c.min():.4g}-"
            f"{e_c.max():.4g} GeV",
        )


def evaluate(
    ref: Sample,
    candidates: Sequence[Sample],
    out: Path,
    bins: EnergyBins | None = None,
    n_bins: int = 10,
    splits: int = 10,
    classifier_splits: int = 1,
    seed: int = 0,
    plots: bool = True,
    log=print,
    view: View | None = None,
) -> dict:
    """Compare, write DIR/metrics.json, DIR/summary.md and the plots; returns the JSON content."""
    bins = bins or EnergyBins.from_energies(ref.features.energy, n_bins)
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise QcaloError(f"candidate names must differ, got {names}; name them with NAME=FILE")
    for cand in candidates:
        check_geometry(ref.data, cand.data, cand.name, view)
        check_energies(ref, cand, bins)
    results = with_noise_floor(
        ref.features,
        {c.name: c.features for c in candidates},
        bins,
        splits,
        classifier_splits,
        seed,
        progress=lambda m: log(f"  {m}"),
    )
    counts = {"reference": np.bincount(bins.assign(ref.features.energy) + 1, minlength=len(bins) + 1)[1:]}
    for c in candidates:
        counts[c.name] = np.bincount(bins.assign(c.features.energy) + 1, minlength=len(bins) + 1)[1:]
    report = {
        "qcalo_version": __version__,
        "reference": _describe(ref),
        "candidates": {c.name: _describe(c) for c in candidates},
        "energy_bins": {
            "edges": bins.edges.tolist(),
            "labels": bins.labels(),
            "fixed": bins.fixed,
            "counts": {k: v.tolist() for k, v in counts.items()},
        },
        "settings": {
            "splits": splits,
            "classifier_splits": classifier_splits,
            "seed": seed,
            "threshold_gev": ref.features.threshold,
            "view": None if view is None else view.spec(),
            "cell_sample": 0 if ref.features.cells is None else len(ref.features.cells),
        },
        "definitions": DEFINITIONS,
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "metrics.json", json.dumps(report, indent=1, default=_json_default) + "\n")
    plot_paths = []
    if plots:
        from qcalo.metrics.plots import make_plots

        log("  plots")
        plot_paths = make_plots(ref.features, {c.name: c.features for c in candidates}, bins, out)
    write_text(out / "summary.md", summary_markdown(report, [p.name for p in plot_paths]))
    return report


def _describe(s: Sample) -> dict:
    return {
        "files": [str(f.path) for f in s.data.files],
        "n": s.features.n,
        "geometry": json.loads(s.features.geometry.to_json()),
    }


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def headline_metrics(report: dict) -> list[str]:
    """The metrics a person reads first, named for this geometry, that the report holds."""
    g = report["reference"]["geometry"]
    depth = g["axes"][g["depth_axis"]]
    t0 = next((a for i, a in enumerate(g["axes"]) if i != g["depth_axis"]), None)
    names = [h.format(depth=depth, t0=t0) for h in HEADLINE if t0 is not None or "{t0}" not in h]
    return [n for n in names if n in report["results"]["floor"]]


def summary_markdown(report: dict, plots: Sequence[str] = ()) -> str:
    res = report["results"]
    cands = list(report["candidates"])
    ref = report["reference"]
    lines = ["# qcalo evaluation", "", f"Reference: {', '.join(ref['files'])} ({ref['n']} showers)."]
    for name, c in report["candidates"].items():
        lines.append(f"Candidate `{name}`: {', '.join(c['files'])} ({c['n']} showers).")
    eb = report["energy_bins"]
    kind = "fixed energies" if eb["fixed"] else "energy bins"
    lines += [
        "",
        f"{len(eb['labels'])} {kind}: {', '.join(eb['labels'])}. Noise floor: the same metric "
        f"between disjoint halves of the reference, {report['settings']['splits']} random splits "
        "(mean +- spread); a candidate is marked **above floor** when it is worse than the floor "
        "by more than 3 spreads (classifier AUC: more than 3 sigma above 0.5).",
        "",
    ]
    lines.append("| metric | noise floor | " + " | ".join(cands) + " |")
    lines.append("|---|---|" + "---|" * len(cands))
    for m in headline_metrics(report):
        f = res["floor"][m]
        row = f"| {m} | {_fmt(f['overall'])} +- {_fmt(f['spread'])} |"
        for c in cands:
            v = res[c][m]
            row += f" {_fmt(v['overall'])} {'**above floor**' if v['above_floor'] else 'ok'} |"
        lines.append(row)
    lines.append("")
    for c in cands:
        above = [m for m, v in res[c].items() if v.get("above_floor")]
        total = sum(1 for v in res[c].values() if "above_floor" in v)
        lines.append(
            f"`{c}`: {len(above)} of {total} metrics above the noise floor"
            + (f": {', '.join(above)}." if above else ".")
        )
    lines += ["", "All metrics, per energy bin, with definitions: `metrics.json`."]
    if plots:
        lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in plots) + "."]
    return "\n".join(lines) + "\n"


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.3g}"


def progress_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
