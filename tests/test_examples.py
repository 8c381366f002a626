import json
import subprocess
import sys
from pathlib import Path

from qcalo.data.dataset import open_showers

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run examples/NAME.py as a user would; fails the test with its stderr if it fails."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_data_tour_runs(tmp_path):
    proc = run_example("data_tour", "--n", "300", "--out-dir", str(tmp_path))
    assert "300 showers" in proc.stdout and "train 2" in proc.stdout
    assert "one batch: cells (128, 25, 25, 25)" in proc.stdout
    ratio = float(proc.stdout.split("deposited / primary energy: ")[1].split()[0])
    assert 0.022 < ratio < 0.026
    val = open_showers(tmp_path / "validation.h5")
    assert 0 < len(val) < 300


def test_int8_inference_quick(tmp_path):
    proc = run_example("int8_inference", "--quick", "--threads", "1", "--out-dir", str(tmp_path))
    assert (tmp_path / "generator.int8.onnx").stat().st_size < (
        tmp_path / "generator.onnx"
    ).stat().st_size / 2.5
    rows = {line.split()[0] + line.split()[1]: line.split()[2:] for line in proc.stdout.splitlines()[-3:-1]}
    assert set(rows) == {"onnxfp32", "onnxint8"}
    ratios = [float(v) for v in proc.stdout.splitlines()[-1].split()[1:]]
    assert len(ratios) == 4 and all(0 < r < 10 for r in ratios)
    for name in ("gen_fp32.h5", "gen_int8.h5"):
        assert len(open_showers(tmp_path / name)) == 150


def test_quantum_devices_quick(tmp_path):
    """One checkpoint on four devices through `--set device.*` only; 1024 shots move the mean
    profile's KL by < 10 % of its value, the noise model moves it more."""
    proc = run_example("quantum_devices", "--quick", "--out-dir", str(tmp_path))
    table = proc.stdout.split("ms/shower\n")[1].splitlines()
    assert len(table) == 12
    kl = {}
    for k in range(0, 12, 3):
        name = table[k][:38].strip()
        kl[name] = [float(row[38:].split()[1]) for row in table[k : k + 3]]
    assert list(kl) == [
        "default.qubit (exact)",
        "qiskit.aer, 1024 shots",
        "qiskit.aer, shots + fake_torino noise",
        "qiskit.remote, fake_torino",
    ]
    exact, shots, noisy = (kl[name] for name in list(kl)[:3])
    assert all(abs(s - e) < 0.1 * e for s, e in zip(shots, exact, strict=True))
    assert max(abs(x - e) / e for x, e in zip(noisy, exact, strict=True)) > 0.1
    assert len(open_showers(tmp_path / "generated_3.h5")) == 120


def test_compare_classical_quantum_quick(tmp_path):
    """Quantum, its MLP twin and a Conv2D on one table: parameter counts match the twin's
    promise, every model trains the quantum run's step count, and a 4-step model is far above
    the reference's noise floor (KL of the mean profile) at every energy."""
    proc = run_example("compare_classical_quantum", "--quick", "--out-dir", str(tmp_path))
    res = json.loads((tmp_path / "results.json").read_text())
    models = res["models"]
    assert list(models) == ["quantum", "mlp twin", "conv2d"]
    q, twin = models["quantum"], models["mlp twin"]
    assert abs(twin["parameters"] - q["parameters"]) <= 0.05 * q["parameters"]
    assert models["conv2d"]["parameters"] > 1e6
    assert q["steps"] == twin["steps"] == 4
    kl = res["metrics"]
    for name in models:
        assert all(m > 5 * f for m, f in zip(kl[name]["kl_shape_z"], kl["floor"]["kl_shape_z"], strict=True))
    rows = proc.stdout.split("spread err\n")[1].splitlines()[:12]
    assert [r[7:29].strip() for r in rows[:4]] == ["reference floor", "quantum", "mlp twin", "conv2d"]
    assert (tmp_path / "plots" / "shape_z.png").stat().st_size > 10_000
    for name in ("gen_quantum.h5", "gen_mlp.h5", "gen_conv2d.h5"):
        assert len(open_showers(tmp_path / name)) == 180
