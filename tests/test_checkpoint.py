"""Checkpoints: today's format loads as saved; format 1 loads only through `upgrade`, with what
qcalo did then (not today's defaults), and stops on knobs qcalo no longer has."""

import pytest
import torch

from qcalo.checkpoint import FORMAT, load_checkpoint, main, plugin_from_checkpoint, save_checkpoint, upgrade
from qcalo.config import load_config
from qcalo.errors import ConfigError
from qcalo.train import untrained_checkpoint


@pytest.fixture(scope="module")
def state(tmp_path_factory, sim_file):
    out = tmp_path_factory.mktemp("ckpt")
    cfg = load_config("conv2d", sets=[f"out={out}", f"data={sim_file}", "val_showers=40"])
    return load_checkpoint(untrained_checkpoint(cfg))


def format_1(state, **config_changes):
    """`state` as qcalo 0.1 wrote it: the torch device under 'device', the removed knobs present."""
    config = dict(state["config"])
    config["device"] = config.pop("torch_device")
    config.update({"g_energies": "batch", "padding": "zeros", "label_smoothing": 0.0, **config_changes})
    return {**state, "format": "qcalo-checkpoint-1", "config": config}


def test_todays_format_round_trips(state, tmp_path):
    assert state["format"] == FORMAT and upgrade(state) is state
    save_checkpoint(tmp_path / "c.pt", state)
    assert load_checkpoint(tmp_path / "c.pt")["config"] == state["config"]


def test_format_1_upgrades_with_what_qcalo_did_before_a_key(state, tmp_path):
    old = format_1(state)
    for key in ("ema", "cell_power"):  # a run written before these keys existed
        del old["config"][key]
    save_checkpoint(tmp_path / "old.pt", old)
    new = load_checkpoint(tmp_path / "old.pt")
    c = new["config"]
    assert new["format"] == FORMAT and c["torch_device"] == "cpu" and "device" not in c
    assert c["ema"] == 0.0 and c["cell_power"] == 1.0  # not today's 0.99 and 0.5
    assert not {"g_energies", "padding", "label_smoothing"} & set(c)
    assert set(c) == set(load_config("conv2d"))
    plugin, g = plugin_from_checkpoint(new)
    assert plugin.config["cell_power"] == 1.0 and not g.training
    assert main(["upgrade", str(tmp_path / "old.pt"), "--out", str(tmp_path / "new.pt")]) == 0
    raw = torch.load(tmp_path / "new.pt", weights_only=True)
    assert raw["format"] == FORMAT and raw["config"] == c


def test_format_1_with_a_removed_knob_stops_with_its_name(state):
    with pytest.raises(ConfigError, match="padding='replicate', which qcalo no longer has"):
        upgrade(format_1(state, padding="replicate"))


def test_a_saved_config_missing_a_key_names_it_and_the_upgrade(state):
    config = {k: v for k, v in state["config"].items() if k != "flip_prob"}
    with pytest.raises(
        ConfigError, match=r"lacks key\(s\) \['flip_prob'\].*python -m qcalo.checkpoint upgrade"
    ):
        plugin_from_checkpoint({**state, "config": config})
