"""What the bench scripts share: timing, and the untrained twin of a trained run.

Imported as `common` (the folder of a script run as `python bench/NAME.py` is on its path).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from qcalo.checkpoint import load_checkpoint
from qcalo.config import load_config
from qcalo.train import untrained_checkpoint


def median_time(fn, repeats: int, sync=lambda: None) -> float:
    """Median seconds of `repeats` calls of fn (after one warm-up call), `sync` after each."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def untrained_twin(run: Path, out: Path, device: str = "cpu") -> Path:
    """A step-0 checkpoint of a run's own config (same data, calibration and architecture),
    built where it will generate: the 'untrained' row of a quality table."""
    saved = load_checkpoint(run / "last.pt")["config"]
    cfg = load_config(
        None, base={**saved, "init_from": None}, overrides={"out": str(out), "torch_device": device}
    )
    return untrained_checkpoint(cfg)
