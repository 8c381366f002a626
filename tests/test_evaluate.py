"""`python -m qcalo.evaluate` end to end on small files."""

import json
import subprocess
import sys

import numpy as np
import pytest

from qcalo.data.geometry import ecal_3dgan
from qcalo.data.simulate import ShowerModel, simulate
from qcalo.data.writer import write_showers
from qcalo.evaluate import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    out = {}
    for name, seed in (("ref", 1), ("cand", 2)):
        e = rng.uniform(20, 100, 400)
        out[name] = write_showers(d / f"{name}.h5", simulate(e, seed=seed), e, ecal_3dgan(), "tests")
    e = rng.uniform(20, 100, 100)
    small = ShowerModel(n_cells=15, n_layers=25)
    out["other_geometry"] = write_showers(d / "g.h5", simulate(e, 3, small), e, small.geometry(), "tests")
    e = np.full(100, 400.0)
    out["other_energy"] = write_showers(d / "e.h5", simulate(e, seed=4), e, ecal_3dgan(), "tests")
    return out


def test_report_files(files, tmp_path, capsys):
    out = tmp_path / "report"
    args = [
        "--reference",
        str(files["ref"]),
        "--candidate",
        f"mine={files['cand']}",
        "--candidate",
        str(files["ref"]),
        "--out",
        str(out),
        "--n-bins",
        "2",
        "--splits",
        "3",
        "--cell-sample",
        "200",
    ]
    assert main(args) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["qcalo_version"] and report["reference"]["n"] == 400
    assert set(report["candidates"]) == {"mine", "ref"}
    assert sum(report["energy_bins"]["counts"]["reference"]) == 400  # every shower in a bin
    res = report["results"]
    for name in ("floor", "mine", "ref"):
        assert {"mse_shapes", "kl_shape_z", "w1_sampling_fraction", "fpd", "kpd", "auc_cells"} <= set(
            res[name]
        )
    m = res["mine"]["mse_shapes"]
    assert len(m["per_bin"]) == 2 and m["floor"] == res["floor"]["mse_shapes"]["overall"]
    assert "above_floor" in m and "definitions" in report
    summary = (out / "summary.md").read_text()
    assert "| metric | noise floor | mine | ref |" in summary and "mse_shapes" in summary
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 14 and all(p.stat().st_size > 10_000 for p in pngs)
    assert "shape_z.png" in summary
    printed = capsys.readouterr().out
    assert "mse_shapes" in printed and "wrote" in printed


def run_evaluate(*args):
    cmd = [sys.executable, "-m", "qcalo.evaluate", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize(
    "which, message", [("other_geometry", "geometry"), ("other_energy", "shares no energy bin")]
)
def test_incompatible_inputs(files, tmp_path, which, message):
    out = tmp_path / "r"
    proc = run_evaluate("--reference", files["ref"], "--candidate", files[which], "--out", out, "--no-plots")
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("qcalo: error:") and message in last and str(files[which]) in last
    assert "Traceback" not in proc.stderr and not (out / "metrics.json").exists()


def test_empty_candidate_file(files, tmp_path):
    bad = tmp_path / "empty.h5"
    bad.write_bytes(b"")
    proc = run_evaluate("--reference", files["ref"], "--candidate", bad, "--out", tmp_path / "r")
    assert proc.returncode == 2 and "empty" in proc.stderr and str(bad) in proc.stderr


def test_reduced_candidate_sets_the_view(files, tmp_path):
    from qcalo.data.dataset import open_showers
    from qcalo.data.views import View

    data = open_showers(files["cand"])
    cells, energy = data.read()
    v = View.parse("longitudinal:8")
    reduced = v.apply(cells, data.geometry)
    pix = write_showers(tmp_path / "pix.h5", reduced, energy, v.geometry(data.geometry), "t")
    common = ["--reference", str(files["ref"]), "--n-bins", "2", "--splits", "3", "--cell-sample", "300"]
    # no --view: the reduced candidate's view is inferred and the reference reduced to it
    assert main([*common, "--candidate", f"c={pix}", "--out", str(tmp_path / "b")]) == 0
    common += ["--view", "longitudinal:8"]
    assert (
        main([*common, "--candidate", f"c={files['cand']}", "--out", str(tmp_path / "c"), "--no-plots"]) == 0
    )
    from_file, reduced_here = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "bc")
    assert from_file["settings"]["view"] == "longitudinal:8"
    assert from_file["reference"]["geometry"]["shape"] == [8]
    # reducing in the generator or in the evaluation gives the same numbers
    for metric, value in from_file["results"]["c"].items():
        expected = reduced_here["results"]["c"][metric]["overall"]
        assert value["overall"] == pytest.approx(expected, rel=1e-3, abs=1e-9), metric
    assert (tmp_path / "b" / "shape_z.png").stat().st_size > 10_000
