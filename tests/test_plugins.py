"""The plug-in interface from outside: the worked example of docs/plugins.md, registered the way a
third-party package registers it (an entry point), trains, generates, evaluates and exports."""

import re
import shutil
import sys
from pathlib import Path

import pytest

from qcalo.errors import ConfigError
from qcalo.evaluate import main as evaluate_main
from qcalo.export import main as export_main
from qcalo.generate import main as generate_main
from qcalo.plugins import get_plugin, registry
from qcalo.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "outer_plugin.py"


def test_the_guide_shows_the_example_as_it_is():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    assert EXAMPLE.read_text() in blocks


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example as an installed package `outer_example` with its entry point."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(EXAMPLE, site / "outer_example.py")
    info = site / "outer_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: outer-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qcalo.generators]\nouter = outer_example:OuterPlugin\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("outer_example", None)


def test_a_third_party_generator_trains_generates_evaluates_and_exports(installed, tmp_path, sim_file):
    assert "outer" in registry() and get_plugin("outer").name == "outer"
    run = tmp_path / "run"
    sets = ["batch_size=16", "val_showers=40", "val_scan_showers=20"]
    args = ["--generator", "outer", "--data", str(sim_file), "--out", str(run), "--quiet", "--max-steps", "2"]
    assert train_main([*args, "--set", *sets]) == 0
    gen = tmp_path / "gen.h5"
    common = ["--energies", "10", "50", "--n", "30", "--quiet"]
    assert generate_main(["--checkpoint", str(run / "best.pt"), *common, "--out", str(gen)]) == 0
    report = tmp_path / "report"
    ev = ["--reference", str(sim_file), "--candidate", f"outer={gen}", "--out", str(report), "--no-plots"]
    assert evaluate_main([*ev, "--splits", "2", "--classifier-splits", "1"]) == 0
    assert "outer" in (report / "summary.md").read_text()
    onnx = tmp_path / "outer.onnx"
    assert export_main(["--checkpoint", str(run / "best.pt"), "--out", str(onnx)]) == 0
    gen_onnx = tmp_path / "gen_onnx.h5"
    assert generate_main(["--onnx", str(onnx), *common, "--out", str(gen_onnx)]) == 0


def test_an_entry_point_that_is_not_a_plugin_is_named(tmp_path, monkeypatch):
    info = tmp_path / "bad-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qcalo.generators]\nbad = pathlib:Path\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError, match="generator 'bad' \\(pathlib:Path\\) is not a qcalo.plugins.GanPlugin"
    ):
        get_plugin("bad")
