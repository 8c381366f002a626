"""`python -m qcalo.evaluate`: judge generated showers against a reference, one yardstick for all.

    python -m qcalo.evaluate --reference REF.h5 --candidate GEN.h5 --out DIR
    python -m qcalo.evaluate --reference 'g4_*.h5' --candidate conv3d=a.h5 --candidate quantum=b.h5 --out DIR

Writes DIR/metrics.json (every distance, per energy bin and overall, with its noise floor),
DIR/summary.md (the table to read first) and PNG plots with ratio panels.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from qcalo import cli
from qcalo.data.dataset import open_showers
from qcalo.data.views import View
from qcalo.errors import ConfigError
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.report import check_geometry, evaluate, headline_metrics, load_sample, progress_log


def _candidate(spec: str) -> tuple[str | None, str]:
    name, sep, path = spec.partition("=")
    return (name, path) if sep and name and not Path(spec).exists() else (None, spec)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--reference", nargs="+", required=True, help="reference HDF5 files or globs")
    p.add_argument(
        "--candidate",
        action="append",
        required=True,
        metavar="[NAME=]FILE",
        help="generated showers (file or glob); repeat to compare several",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--geometry", default=None, help="geometry for files that do not carry one")
    p.add_argument(
        "--energy-bins",
        type=float,
        nargs="+",
        metavar="EDGE",
        help="primary-energy bin edges in GeV (default: from the reference's energies)",
    )
    p.add_argument("--n-bins", type=int, default=10, help="bins for a continuous spectrum (default 10)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="cell energy (GeV) above which a cell counts as hit (default 0)",
    )
    p.add_argument("--splits", type=int, default=10, help="random halvings for the noise floor")
    p.add_argument(
        "--classifier-splits",
        type=int,
        default=1,
        help="splits in which the classifier tests are trained (0: none)",
    )
    p.add_argument(
        "--cell-sample",
        type=int,
        default=4000,
        help="showers per sample whose cells feed the cell classifier (0: skip it; default 4000)",
    )
    p.add_argument(
        "--view",
        default=None,
        help="compare reduced views, e.g. longitudinal:8 or transverse:x:5 (default: the view of a "
        "reduced candidate, such as a quantum generator's 8 pixels, else full resolution)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    if args.splits < 2:
        raise ConfigError("--splits must be at least 2 (the floor's spread needs two values)")

    view = View.parse(args.view) if args.view else None
    ref_data = open_showers(args.reference, args.geometry)
    cand_data = {}
    for spec in args.candidate:
        name, path = _candidate(spec)
        data = open_showers(path, args.geometry)
        name = name or data.files[0].path.stem
        if name in cand_data:
            raise ConfigError(f"two candidates are named '{name}'; name them with NAME=FILE")
        cand_data[name] = data
    if view is None:  # a reduced candidate (e.g. quantum) sets the view everything is compared in
        inferred = {
            v.spec(): v for d in cand_data.values() if (v := View.infer(ref_data.geometry, d.geometry))
        }
        if len(inferred) > 1:
            raise ConfigError(
                f"candidates are reduced to different views {sorted(inferred)}; pick one with --view"
            )
        if inferred:
            view = next(iter(inferred.values()))
            progress_log(f"comparing the reduced view {view.spec()} of every sample (set --view to change)")
    for name, data in cand_data.items():
        check_geometry(ref_data, data, name, view)  # before the long read
    progress_log("reading reference")
    ref = load_sample("reference", ref_data, args.threshold, args.cell_sample, args.seed, view)
    cands = []
    for k, (name, data) in enumerate(cand_data.items()):
        progress_log(f"reading candidate {name}")
        cands.append(load_sample(name, data, args.threshold, args.cell_sample, args.seed + 1 + k, view))
    bins = EnergyBins.from_edges(args.energy_bins) if args.energy_bins else None
    report = evaluate(
        ref,
        cands,
        args.out,
        bins,
        args.n_bins,
        args.splits,
        args.classifier_splits,
        args.seed,
        plots=not args.no_plots,
        log=progress_log,
        view=view,
    )
    res = report["results"]
    width = max(len(m) for m in headline_metrics(report))
    print(f"{'metric':{width}}  {'floor':>10}  " + "  ".join(f"{c:>18}" for c in report["candidates"]))
    for m in headline_metrics(report):
        row = f"{m:{width}}  {res['floor'][m]['overall']:10.3g}  "
        for c in report["candidates"]:
            v = res[c][m]
            row += f"  {v['overall']:10.3g} {'ABOVE' if v['above_floor'] else 'ok':>7}"
        print(row)
    print(f"wrote {args.out / 'metrics.json'}, {args.out / 'summary.md'} and plots")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
