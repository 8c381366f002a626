"""Flat training configs: loop defaults + the plug-in's model defaults < the generator's preset
< a YAML file < `--set key=value` < command-line options.

One flat dict, nanoGPT-style: every key is printed, saved in the run folder and in every
checkpoint. Each key has one default: the loop's below, a model's in its plug-in; presets
(`configs/`) list only what differs. Unknown keys are an error (a typo must not silently
train with a default).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from qcalo.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "generator": "conv3d",  # a registered plug-in name (qcalo.plugins)
    "data": None,  # files or globs; None: the built-in data set
    "geometry": None,  # for files that do not carry one
    "val_fraction": 0.1,  # held out for validation
    "split_by": "fraction",  # or "file"
    "seed": 0,  # every random stream of the run derives from it
    "epochs": 10,
    "max_steps": 0,  # stop after this many steps in all (0: no limit)
    "time_limit_min": 0.0,  # stop (validate, checkpoint) after this many minutes of training (0: none)
    "batch_size": 64,  # per process
    "optimizer": "rmsprop",  # the 3DGAN's; or "adam"
    "lr_g": 1e-3,  # the 3DGAN's learning rates
    "lr_d": 1e-3,
    "lr_halflife": 0,  # halve both learning rates every this many steps (0: constant)
    "betas": [0.5, 0.999],  # adam only
    "rho": 0.9,  # rmsprop only (Keras RMSprop rho)
    "g_steps": 2,  # generator updates per discriminator update (3DGAN: 2)
    "ema": 0.99,  # validate and generate with a moving average of the generator's weights (0: off)
    "sample_energy_power": 0.5,  # draw training showers ~E^-power: rare low energies train more often
    "share_fakes": False,  # the generator's first step reuses the discriminator's fakes (one pass a step)
    "init_from": None,  # a checkpoint whose networks a new run starts from (fine-tuning on a device)
    "torch_device": "cpu",  # where torch runs: cpu, cuda, cuda:1 (not the quantum device.name)
    "val_showers": 1000,  # held-out showers used for validation
    "val_scan_showers": 100,  # generated at each of 5 energies for the energy scan (0: no scan)
    "score_spread_weight": 0.0,  # weight of the resolution (spread) term in the best-checkpoint score
    "score_depth_weight": 1.0,  # weight of the scan's mean shower depth (worst relative error) in it
    "checkpoint_every": 0,  # also checkpoint every N steps (0: at epoch ends only)
    "val_every": 0,  # also validate (and keep best.pt) every N steps (0: at epoch ends only)
    "log_every": 10,  # steps between log.jsonl records
    "out": None,  # run folder; None: runs/<generator>
}
PRESET_PACKAGE = "configs"  # the top-level `configs/` folder, installed with qcalo


def parse_value(text: str) -> Any:
    """A --set value as YAML: 1e-3 -> float, [1, 2] -> list, null -> None, words -> str."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # PyYAML reads YAML 1.1, where 1e-3 (no dot) is a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Numbers written as strings ('1e-3' in a YAML file) become the default's type; a switch
    (a key whose default is true or false) takes only true or false, not any truthy value."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if value is None or not isinstance(default, int | float):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}") from None
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings as flat dotted keys: {device: {name: x}} -> {'device.name': x}."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def preset_path(name: str) -> Path:
    """The shipped preset `name` (configs/NAME.yaml), found in the installed package."""
    return Path(str(files(PRESET_PACKAGE).joinpath(f"{name}.yaml")))


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in files(PRESET_PACKAGE).iterdir() if p.name.endswith(".yaml")
    )


def read_file(path: str | Path) -> dict[str, Any]:
    """A YAML config file as flat keys (its own keys only; `extends` kept as a key)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return flatten(cfg)


def file_layers(path: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """A file and the presets it `extends`, base first: [(path, its own keys), ...]."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    source: Path | None = Path(path)
    while source is not None:
        if any(source.resolve() == p.resolve() for p, _ in layers):
            raise ConfigError(f"config file {path}: 'extends' forms a cycle through {source}")
        values = read_file(source)
        layers.insert(0, (source, values))
        parent = values.pop("extends", None)
        if parent is not None and not preset_path(str(parent)).is_file():
            raise ConfigError(
                f"config file {source}: extends '{parent}', which is not a preset; "
                f"known: {', '.join(preset_names())}"
            )
        source = None if parent is None else preset_path(str(parent))
    return layers


def base_config(name: str) -> dict[str, Any]:
    """The loop defaults and the plug-in `name`'s model defaults."""
    from qcalo.plugins import get_plugin

    return {**DEFAULTS, **get_plugin(name).defaults}


def generator_layers(name: str) -> list[tuple[Path, dict[str, Any]]]:
    """The generator's own preset (configs/NAME.yaml, with what it extends), if it ships one."""
    path = preset_path(name)
    return file_layers(path) if path.is_file() else []


def load_config(
    generator: str | None,
    path: str | Path | None = None,
    sets: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full config of a run. `base` (a resumed run's or a checkpoint's saved config, every
    key present) replaces the defaults and the generator's preset; a file, `--set` and
    command-line options still apply on top of it."""
    file = file_layers(path) if path is not None else []
    file_generator = next((v["generator"] for _, v in reversed(file) if "generator" in v), None)
    name = generator or file_generator or (base or {}).get("generator") or DEFAULTS["generator"]
    cfg = base_config(name)
    if base is not None:
        missing = sorted(set(cfg) - set(base))
        if missing:
            raise ConfigError(
                f"saved config of generator '{name}' lacks key(s) {missing}: it predates this qcalo; "
                "upgrade its checkpoint with python -m qcalo.checkpoint upgrade CHECKPOINT"
            )
        cfg.update({k: base[k] for k in cfg})
    presets = generator_layers(name) if base is None else []
    preset_files = {p.resolve() for p, _ in presets}
    layers = [(f"preset {p}", v) for p, v in presets]
    layers += [(f"config file {p}", v) for p, v in file if p.resolve() not in preset_files]
    set_cfg: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        set_cfg[key.strip()] = parse_value(value)
    layers += [("--set", set_cfg), ("option", overrides or {})]
    for source, values in layers:
        unknown = sorted(set(values) - set(cfg))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown} for generator '{name}'; known: {', '.join(sorted(cfg))}"
            )
        for key, value in values.items():
            if value is not None or source != "option":
                cfg[key] = _coerce(key, value, cfg[key], source)
    cfg["generator"] = name
    if cfg["out"] is None:
        cfg["out"] = f"runs/{name}"
    return cfg
