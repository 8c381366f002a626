"""`python -m qcalo.data.inspect FILES...`: what a user wants to know first about a data set.

Prints the layout detected per file, the number of showers, the geometry, the primary-energy
range and histogram, and the mean deposited / primary energy per energy bin. Without files it
inspects the built-in data set (simulating it on first use).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from qcalo import cli
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.data.views import total_energy
from qcalo.metrics.binning import EnergyBins

BAR = 40


def summarize(data: ShowerData, n_bins: int = 10) -> str:
    energy = data.energy
    deposited = np.concatenate([total_energy(c, data.geometry) for c, _ in data.chunks()])
    ratio = deposited / energy
    g = data.geometry
    lines = [f"{len(data.files)} file(s), {len(data)} showers"]
    for f in data.files:
        lines.append(f"  {f.path}  layout {f.layout}, {f.n} showers")
    sizes = "" if g.cell_sizes is None else ", cells " + " x ".join(f"{c:g}" for c in g.cell_sizes) + " mm"
    lines.append(f"geometry: {g.describe()}{sizes}")
    bins = EnergyBins.from_energies(energy, n_bins)
    kind = "fixed energies" if bins.fixed else "continuous spectrum"
    lines.append(
        f"primary energy: {energy.min():.4g} to {energy.max():.4g} GeV, {kind}, mean {energy.mean():.4g} GeV"
    )
    idx = bins.assign(energy)
    counts = np.bincount(idx, minlength=len(bins))
    lines.append(f"  {'E bin (GeV)':>19}  {'showers':>7}  {'':{BAR}}  {'Edep/E mean':>11}  {'rms':>7}")
    labels = bins.labels()
    for b, c in enumerate(counts):
        label = labels[b].removesuffix(" GeV").replace("-", " - ")
        bar = "#" * round(BAR * c / max(counts.max(), 1))
        sel = ratio[idx == b]
        stats = f"{sel.mean():11.4g}  {sel.std():7.2g}" if c else f"{'-':>11}  {'-':>7}"
        lines.append(f"  {label:>19}  {c:7d}  {bar:{BAR}}  {stats}")
    lines.append(
        f"deposited energy: mean {deposited.mean():.4g} GeV; deposited / primary: mean {ratio.mean():.4g}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.data.inspect", description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*", help="HDF5 files or glob patterns (default: the built-in data set)")
    p.add_argument(
        "--geometry",
        default=None,
        help="geometry for files that do not carry one, e.g. calochallenge-2 or 45x16x9",
    )
    p.add_argument("--bins", type=int, default=10, help="energy bins for a continuous spectrum")
    args = p.parse_args(argv)
    if args.files:
        files = args.files
    else:
        from qcalo.data.builtin import builtin_dataset

        files = [builtin_dataset()]
    print(summarize(open_showers(files, args.geometry), args.bins))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
