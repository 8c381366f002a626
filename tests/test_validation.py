"""Validation: the energy scan sees what a held-out flat sample cannot (the width of showers whose
energy sits in a boundary plane, the mean depth at each energy), and the score counts it."""

import numpy as np
import pytest
import torch

from qcalo.config import load_config
from qcalo.train import Trainer
from qcalo.validation import energy_scan

FAST = ["batch_size=8", "val_showers=40", "log_every=1", "g_steps=1"]


def scan_trainer(tmp_path, sim_file):
    """A conv2d trainer whose energy scan tests replace the generator's showers."""
    cfg = load_config("conv2d", sets=FAST + ["val_scan_showers=100"], overrides={"data": [str(sim_file)]})
    cfg["out"] = str(tmp_path)
    return Trainer(cfg, progress=False)


def scan(trainer):
    """The energy scan of epoch 0's validation."""
    c = trainer.cfg
    return energy_scan(
        trainer.plugin, trainer.g, trainer.fits, c["val_scan_showers"], c["seed"] * 7919 + 1, trainer.device
    )


def test_energy_scan_logs_the_transverse_width(tmp_path, sim_file, monkeypatch):
    """Simulated showers sit on the data's width fit; the same showers with 30 % of their energy
    moved into the boundary plane x = 0 (what Conv3D runs did) are flagged at every energy."""
    from qcalo.data.simulate import simulate

    trainer = scan_trainer(tmp_path, sim_file)
    dumped = 0.0

    def showers(generator, energy, gen):
        cells = simulate(energy.numpy(), seed=int(energy.sum()))
        plane = dumped * cells.sum(axis=(1, 2, 3)) / (25 * 25)
        cells = (1 - dumped) * cells
        cells[:, 0] += plane[:, None, None]  # x is the first axis
        return torch.from_numpy(cells)

    monkeypatch.setattr(trainer.plugin, "generate", showers)
    same = scan(trainer)
    width = {k: v for k, v in same.items() if k.startswith("width_scan_") and "worst" not in k}
    assert len(width) == 5 and same["width_scan_worst"] < 0.1, width  # measured 0.020
    dumped = 0.3
    wide = scan(trainer)
    assert all(wide[k] > 2.0 for k in width), wide  # measured +4.7 to +4.9 (5.7x as wide)
    assert wide["depth_scan_worst"] < 0.15  # the depth hardly sees it (measured 0.086)


def test_energy_scan_scores_the_mean_shower_depth(tmp_path, sim_file, monkeypatch):
    """Simulated showers at the 5 scan energies sit on the data's depth fit (measured worst 0.018);
    the same showers two layers deeper are flagged at every energy, and the score counts that."""
    from qcalo.data.simulate import simulate

    trainer = scan_trainer(tmp_path, sim_file)
    shift = 0

    def showers(generator, energy, gen):  # the same showers for the same energies
        cells = simulate(energy.numpy(), seed=int(energy.sum()))
        return torch.from_numpy(np.roll(cells, shift, axis=3))  # z is the last axis

    monkeypatch.setattr(trainer.plugin, "generate", showers)
    same = scan(trainer)
    depth = {k: v for k, v in same.items() if k.startswith("depth_scan_") and "worst" not in k}
    assert len(depth) == 5 and same["depth_scan_worst"] < 0.05, depth  # 180 training showers' fit
    shift = 2
    deeper = scan(trainer)
    # 2 layers over a mean depth of ~11 (9 GeV) to ~19 (220 GeV) layers (measured 0.18 to 0.11)
    assert all(0.08 < deeper[k] < 0.25 for k in depth), deeper
    val = trainer.validate(0)
    trainer.cfg["score_depth_weight"] = 0.0
    assert val["score"] - trainer.validate(0)["score"] == pytest.approx(val["depth_scan_worst"])
