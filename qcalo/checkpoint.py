"""Checkpoints: what a run saves, how it loads, and how older formats are upgraded.

    python -m qcalo.checkpoint info runs/conv2d/best.pt
    python -m qcalo.checkpoint upgrade old.pt [--out new.pt]

A checkpoint is a plain dict of tensors and numbers, loaded with `weights_only=True` (no code
runs from the file). It carries its full config, so a checkpoint alone generates, exports and
resumes; `format` names its version, and an older version loads through `upgrade` only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qcalo import cli
from qcalo.atomic import atomic_path
from qcalo.config import load_config
from qcalo.data.geometry import Geometry
from qcalo.errors import ConfigError
from qcalo.plugins import GanPlugin, get_plugin

FORMAT = "qcalo-checkpoint-2"
FORMATS = ("qcalo-checkpoint-1", FORMAT)

# Format 1 -> 2. Keys a format-1 run may predate, with the value that reproduces what qcalo did
# before the key existed (not today's default).
V1_BEFORE_KEY: dict[str, Any] = {
    "cell_power": 1.0,
    "ema": 0.0,
    "energy_input": "product",
    "sample_energy_power": 0.0,
    "score_depth_weight": 0.0,
    "score_spread_weight": 1.0,
}
V1_RENAMED = {"device": "torch_device"}
# Knobs removed in format 2, with the one value that qcalo still does.
V1_REMOVED = {"g_energies": "batch", "padding": "zeros", "energy_readout": "asin", "label_smoothing": 0.0}


def upgrade(state: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint dict in today's format; a ConfigError if it uses what qcalo no longer has."""
    if state.get("format") == FORMAT:
        return state
    config = dict(state["config"])
    for old, new in V1_RENAMED.items():
        if old in config:
            config[new] = config.pop(old)
    for key, kept in V1_REMOVED.items():
        value = config.pop(key, kept)
        if value != kept:
            raise ConfigError(
                f"{source} was trained with {key}={value!r}, which qcalo no longer has "
                f"(only {key}={kept!r}); use a qcalo version before 0.2 for it"
            )
    config = {**V1_BEFORE_KEY, **config}
    today = load_config(config["generator"])  # the rest took the then default, which is today's
    config = {**today, **{k: v for k, v in config.items() if k in today}}
    return {**state, "format": FORMAT, "config": config}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save through a temporary file: a kill mid-write leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A qcalo checkpoint in today's format, loaded with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") not in FORMATS:
        raise ConfigError(f"{path} is not a qcalo checkpoint (expected format '{FORMAT}')")
    return upgrade(state, f"checkpoint {path}")


def generator_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint generates with: the moving average when the run kept one."""
    models = state["models"]
    return models.get("generator_ema", models["generator"])


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], what: str) -> None:
    """Load `weights` into `module`, or one line naming the keys or shapes that do not fit."""
    own = module.state_dict()
    wrong = [k for k in own if k not in weights or weights[k].shape != own[k].shape]
    wrong += sorted(set(weights) - set(own))
    if wrong:
        raise ConfigError(
            f"{what} does not fit this run's (keys or shapes differ: {', '.join(wrong)}); "
            "train with the same architecture settings"
        )
    module.load_state_dict(weights)


def plugin_from_checkpoint(state: dict[str, Any]) -> tuple[GanPlugin, nn.Module]:
    """The plug-in and its generator (eval mode, CPU) as saved in a checkpoint."""
    config = load_config(None, base=state["config"])
    plugin = get_plugin(config["generator"])(
        config, Geometry.from_json(state["geometry"]), state["calibration"]
    )
    generator, _ = plugin.build()
    generator.load_state_dict(generator_weights(state))
    return plugin, generator.eval()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.checkpoint", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="what a checkpoint holds")
    info.add_argument("checkpoint", type=Path)
    up = sub.add_parser("upgrade", help=f"rewrite a checkpoint in format {FORMAT}")
    up.add_argument("checkpoint", type=Path)
    up.add_argument("--out", type=Path, default=None, help="default: replace the file")
    args = p.parse_args(argv)
    state = load_checkpoint(args.checkpoint)
    if args.command == "info":
        c = state["config"]
        print(
            f"{args.checkpoint}: {state['format']}, generator {c['generator']}, step {state['step']}, "
            f"epoch {state['epoch']}, best score {state['best']:.4g}, qcalo {state['qcalo_version']}"
        )
        return 0
    out = args.out or args.checkpoint
    save_checkpoint(out, state)
    print(f"wrote {out} ({FORMAT})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
