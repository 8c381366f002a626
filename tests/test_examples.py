import subprocess
import sys
from pathlib import Path

from qcalo.data.dataset import open_showers

ROOT = Path(__file__).resolve().parents[1]


def test_data_tour_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "data_tour.py"), "--n", "300", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "300 showers" in proc.stdout and "train 2" in proc.stdout
    assert "one batch: cells (128, 25, 25, 25)" in proc.stdout
    ratio = float(proc.stdout.split("deposited / primary energy: ")[1].split()[0])
    assert 0.022 < ratio < 0.026
    val = open_showers(tmp_path / "validation.h5")
    assert 0 < len(val) < 300
