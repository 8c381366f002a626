import pytest

from qcalo.config import load_config, parse_value
from qcalo.errors import ConfigError


def test_layers_of_a_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("generator: conv2d\nepochs: 3\nlr_g: 2.0e-4\n")
    cfg = load_config(None, path, ["epochs=5", "betas=[0.9, 0.99]", "data=null"], {"seed": 7, "out": None})
    assert cfg["generator"] == "conv2d" and cfg["epochs"] == 5 and cfg["lr_g"] == 2e-4
    assert cfg["betas"] == [0.9, 0.99] and cfg["seed"] == 7 and cfg["data"] is None
    assert cfg["out"] == "runs/conv2d" and cfg["xscale"] == 100.0  # plug-in default


def test_shipped_configs_load():
    for name in ("conv3d", "conv2d"):
        assert load_config(None, f"configs/{name}.yaml")["generator"] == name


@pytest.mark.parametrize("sets, message", [(["epohcs=3"], "unknown key"), (["epochs"], "key=value")])
def test_bad_sets(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config("conv3d", None, sets)


def test_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("conv3d", tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config("conv3d", tmp_path / "bad.yaml")


def test_parse_value():
    assert parse_value("1e-3") == 1e-3 and parse_value("true") is True and parse_value("abc") == "abc"


def test_numbers_written_yaml_1_1_style(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr_d: 1e-4\nepochs: 2.0\n")
    cfg = load_config("conv3d", path)
    assert cfg["lr_d"] == 1e-4 and cfg["epochs"] == 2 and isinstance(cfg["epochs"], int)
    path.write_text("lr_d: fast\n")
    with pytest.raises(ConfigError, match="'lr_d' must be a number"):
        load_config("conv3d", path)


def test_resumed_run_keeps_its_config_but_options_apply():
    saved = load_config("conv2d", None, ["batch_size=8", "lr_g=3e-4"])
    cfg = load_config(None, None, ["epochs=7"], {"max_steps": 50}, base=saved)
    assert cfg["generator"] == "conv2d" and cfg["batch_size"] == 8 and cfg["lr_g"] == 3e-4
    assert cfg["epochs"] == 7 and cfg["max_steps"] == 50


def test_switches_take_only_true_or_false(tmp_path):
    assert load_config("conv3d", None, ["share_fakes=true"])["share_fakes"] is True
    with pytest.raises(ConfigError, match="--set: 'share_fakes' must be true or false, got 'maybe'"):
        load_config("conv3d", None, ["share_fakes=maybe"])
    path = tmp_path / "c.yaml"
    path.write_text("share_fakes: 1\n")
    with pytest.raises(ConfigError, match="config file .*: .share_fakes. must be true or false, got 1"):
        load_config("conv3d", path)


def test_every_preset_lists_only_what_differs_from_beneath_it():
    """One default per key: a preset that restated a default (the loop's, the plug-in's, or
    that of the preset it extends) would hide where the value really comes from."""
    from qcalo.config import DEFAULTS, base_config, file_layers, generator_layers, preset_names, preset_path
    from qcalo.plugins import get_plugin, registry

    for name in registry():
        assert not set(get_plugin(name).defaults) & set(DEFAULTS), f"plug-in {name} sets loop keys"
    checked = 0
    for name in preset_names():
        layers = file_layers(preset_path(name))
        generator = next((v["generator"] for _, v in layers if "generator" in v), None)
        if generator is None:  # a shared block (reduced.yaml): judged through the presets using it
            continue
        beneath = base_config(generator)
        below = [(p, v) for p, v in generator_layers(generator) + layers[:-1] if p != preset_path(name)]
        for _, values in below:
            beneath.update(values)
        full = load_config(generator, preset_path(name))
        for key, value in layers[-1][1].items():
            if key != "generator":
                assert full[key] == value and beneath[key] != value, f"configs/{name}.yaml restates {key}"
                checked += 1
    assert checked > 20


def test_a_preset_extends_another(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: quantum_aer\nepochs: 3\n")
    cfg = load_config(None, path)
    assert cfg["generator"] == "quantum" and cfg["device.name"] == "qiskit.aer" and cfg["epochs"] == 3
    assert cfg["optimizer"] == "adam"  # from reduced.yaml, beneath the quantum preset
    path.write_text("extends: nothing\n")
    with pytest.raises(ConfigError, match="extends 'nothing', which is not a preset"):
        load_config(None, path)


def test_generator_loads_its_preset():
    cfg = load_config("quantum")
    assert cfg["lr_g"] == 0.05 and cfg["batch_size"] == 256 and cfg["score_spread_weight"] == 1.0
    assert load_config("conv2d")["lr_g"] == 1e-3
