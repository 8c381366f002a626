import subprocess
import sys

from qcalo.data import builtin
from qcalo.data.dataset import open_showers


def test_builtin_dataset_is_cached_and_repaired(tmp_path, monkeypatch):
    monkeypatch.setenv("QCALO_CACHE_DIR", str(tmp_path))
    path = builtin.builtin_dataset(n=40, seed=3, progress=False)
    assert path.parent == tmp_path and len(open_showers(path)) == 40
    stamp = path.stat().st_mtime_ns
    assert builtin.builtin_dataset(n=40, seed=3, progress=False) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not simulated again
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # truncated, e.g. by a full disk
    builtin.builtin_dataset(n=40, seed=3, progress=False)
    assert path.read_bytes() == good  # simulated again, identically


def test_inspect_without_files_shows_builtin(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QCALO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(builtin, "DEFAULT_N", 60)
    from qcalo.data import inspect

    assert inspect.main([]) == 0
    text = capsys.readouterr().out
    assert "simulating the built-in data set (60 showers" in text
    assert "60 showers" in text and "layout 3dgan" in text and "depth axis z" in text
    assert str(tmp_path / "builtin-") in text and "Edep/E" in text


def test_inspect_cli_fixed_energies(tmp_path):
    out = tmp_path / "fixed.h5"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "qcalo.data.simulate",
            "--energies",
            "10",
            "100",
            "--n",
            "20",
            "--out",
            str(out),
            "--quiet",
        ],
        check=True,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "qcalo.data.inspect", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "fixed energies" in proc.stdout and "40 showers" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.strip().startswith(("10 ", "100 "))]
    assert len(rows) == 2 and all(" 20 " in r for r in rows)
    ratios = [float(r.split()[-2]) for r in rows]
    assert all(0.022 < x < 0.026 for x in ratios)
