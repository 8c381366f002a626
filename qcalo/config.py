"""Flat training configs: defaults < plug-in defaults < YAML file < `--set key=value`.

One flat dict, nanoGPT-style: every key is printed, saved in the run folder and in every
checkpoint. Unknown keys are an error (a typo must not silently train with a default).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qcalo.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "generator": "conv3d",
    "data": None,  # files or globs; None: the built-in data set
    "geometry": None,  # for files that do not carry one
    "val_fraction": 0.1,
    "split_by": "fraction",  # or "file"
    "seed": 0,
    "epochs": 10,
    "max_steps": 0,  # stop after this many steps in all (0: no limit)
    "time_limit_min": 0.0,  # stop (validate, checkpoint) after this many minutes of training (0: none)
    "batch_size": 64,
    "optimizer": "rmsprop",  # the 3DGAN's; or "adam"
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    "lr_halflife": 0,  # halve both learning rates every this many steps (0: constant)
    "betas": [0.5, 0.999],  # adam only
    "rho": 0.9,  # rmsprop only (Keras RMSprop rho)
    "g_steps": 2,  # generator updates per discriminator update (3DGAN: 2)
    "ema": 0.0,  # validate, checkpoint for generation and generate with an exponential moving
    # average of the generator's weights, this decay per step (0: off; 0.99 averages ~100 steps)
    "sample_energy_power": 0.0,  # draw training showers in proportion to E^-power (1: a flat
    # spectrum becomes log-uniform, so the rare low energies train as often as the high ones)
    "g_energies": "batch",  # primary energies of generator steps: "batch" (3DGAN) or "log-uniform"
    # true: the first generator step reuses the discriminator's fake batch (pytorch/examples dcgan):
    # one generator pass per step instead of two, i.e. one job per step on a quantum device
    "share_fakes": False,
    "init_from": None,  # a checkpoint whose generator (its averaged weights, if any) and
    # discriminator a new run starts from, e.g. an exact-simulator run fine-tuned on a noisy device;
    # optimisers, step count and calibration are the new run's own
    "device": "cpu",  # cpu, cuda, cuda:1
    "val_showers": 1000,  # held-out showers used for validation each epoch
    "val_scan_showers": 100,  # generated showers at each of 5 energies for the sampling-fraction scan
    "score_spread_weight": 1.0,  # weight of the resolution (spread) term in the best-checkpoint score
    "score_depth_weight": 0.0,  # weight of the scan's mean shower depth (worst relative error) in it
    "checkpoint_every": 0,  # also checkpoint every N steps (0: at epoch ends only)
    "val_every": 0,  # also validate (and keep best.pt) every N steps (0: at epoch ends only)
    "log_every": 10,
    "out": None,  # run folder; None: runs/<generator>
}


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


# Keys added after runs were saved, with the value that reproduces what qcalo did before the key
# existed: a saved config (resumed run, checkpoint) without one gets this, not today's default.
BEFORE_KEY: dict[str, Any] = {
    "cell_power": 1.0,
    "ema": 0.0,
    "energy_input": "product",
    "padding": "zeros",
    "sample_energy_power": 0.0,
    "score_depth_weight": 0.0,
    "score_spread_weight": 1.0,
}


def with_saved(cfg: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """Today's defaults `cfg` replaced by a run's saved config (keys qcalo no longer has are
    dropped; keys the run predates take their BEFORE_KEY value)."""
    out = {**cfg, **{k: v for k, v in BEFORE_KEY.items() if k in cfg}}
    out.update({k: v for k, v in saved.items() if k in cfg})
    return out


def load_config(
    generator: str | None,
    path: str | Path | None = None,
    sets: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full config of a run. `base` (a resumed run's saved config) replaces the defaults and
    the file; `--set` and command-line options still apply on top of it."""
    from qcalo.generators import get_plugin

    file_cfg: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            file_cfg = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(file_cfg, dict):
            raise ConfigError(f"config file {path}: expected a mapping of keys to values")
        file_cfg = flatten(file_cfg)
    name = generator or file_cfg.get("generator") or (base or {}).get("generator") or DEFAULTS["generator"]
    plugin = get_plugin(name)
    cfg = {**DEFAULTS, **plugin.defaults}
    if base is not None:
        cfg = with_saved(cfg, base)
        file_cfg = {}
    set_cfg: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        set_cfg[key.strip()] = parse_value(value)
    for source, values in (("config file", file_cfg), ("--set", set_cfg), ("option", overrides or {})):
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
