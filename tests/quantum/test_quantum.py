"""The quantum generator: ansätze, devices (exact simulators agree, Qiskit paths run), the
plug-in's spaces, training / resume / generate / evaluate through the common loop."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qcalo.checkpoint import load_checkpoint
from qcalo.config import load_config
from qcalo.data.dataset import open_showers
from qcalo.data.geometry import ecal_3dgan
from qcalo.data.views import View
from qcalo.errors import ConfigError
from qcalo.fits import fit_data
from qcalo.plugins import get_plugin
from qcalo.quantum.ansatz import entangle, layout
from qcalo.quantum.devices import fake_backend, make_device
from qcalo.quantum.generator import QuantumGenerator
from qcalo.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
FAST = ["batch_size=8", "val_showers=40", "val_scan_showers=20", "log_every=1", "layers=2"]


def device_cfg(name="default.qubit", **extra):
    cfg = load_config("quantum", sets=[f"device.name={name}"])
    cfg.update({f"device.{k}": v for k, v in extra.items()})
    return cfg


def generator(cfg, ansatz="angle", pixels=4, subs=1, ancillas=0, layers=2):
    lay = layout(ansatz, pixels, subs, ancillas)
    return QuantumGenerator(lay, make_device(cfg, lay.n_wires, seed=3), subs, layers, "ring", True, 0.5)


def latent(g, batch=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    f = torch.linspace(-1, 1, batch)[:, None]
    return torch.cat([torch.randn(batch, g.n_noise, generator=gen), f], dim=1)


def outputs_and_grads(g, z):
    out = g(z)
    (out * torch.arange(1, out.shape[1] + 1)).sum().backward()
    return out.detach(), torch.cat([p.grad.flatten() for p in g.parameters()])


def test_layouts_and_bad_settings():
    assert layout("angle", 8).n_wires == 9
    assert layout("born", 8).n_wires == 4
    assert layout("born", 8, sub_generators=2, ancillas=1).n_wires == 4  # 2 pixel qubits + anc + energy
    with pytest.raises(ConfigError, match="power of 2"):
        layout("born", 6)
    with pytest.raises(ConfigError, match="ansatz 'qgan': expected one of angle, born"):
        layout("qgan", 8)
    with pytest.raises(ConfigError, match="entangler 'star': expected one of"):
        entangle("star", 3)
    with pytest.raises(ConfigError, match="divide"):
        layout("angle", 8, sub_generators=3)


@pytest.mark.parametrize(
    "ansatz,pixels,subs,ancillas", [("angle", 4, 1, 0), ("born", 4, 1, 0), ("born", 8, 2, 1)]
)
def test_generator_output_and_gradients(ansatz, pixels, subs, ancillas):
    torch.manual_seed(0)
    g = generator(device_cfg(), ansatz, pixels, subs, ancillas)
    out, grads = outputs_and_grads(g, latent(g))
    fractions = out[:, :pixels] / pixels
    assert out.shape == (5, pixels + 1)
    assert torch.all(fractions >= 0) and torch.allclose(fractions.sum(1), torch.ones(5), atol=1e-5)
    assert fractions.std(dim=0).min() > 1e-4  # the noise makes every event different
    assert torch.all(torch.isfinite(grads)) and (grads != 0).float().mean() > 0.9


def test_energy_readout_keeps_finite_gradients_at_the_sines_ends():
    """u = a asin<Z> + c undoes the qubit's sine response; noise angles that reach <Z> = +-1
    still give finite gradients (asin's slope is infinite there without the clip)."""
    lay = layout("born", 4)
    torch.manual_seed(0)
    g = QuantumGenerator(lay, make_device(device_cfg(), lay.n_wires, seed=3), 1, 2, "ring", True, 0.5)
    with torch.no_grad():
        g.noise_scale.fill_(3.0)  # noise angles large enough to reach the sine's flat ends
    out, grads = outputs_and_grads(g, latent(g, batch=64))
    assert torch.all(torch.isfinite(grads)) and torch.all(torch.isfinite(out))
    assert out[:, -1].abs().max() > 1.5  # |u| beyond a x 1: asin stretched the flat ends


@pytest.mark.parametrize("ansatz", ["angle", "born"])
def test_lightning_adjoint_agrees_with_default_qubit(ansatz):
    """Same weights, same inputs: outputs and gradients of the exact simulators agree to 1e-6
    (born on lightning measures probabilities as projector expectation values)."""
    results = []
    for name in ("default.qubit", "lightning.qubit"):
        cfg = device_cfg(name)
        g = generator(cfg, ansatz)
        assert g.qdev.diff_method == {"default.qubit": "backprop", "lightning.qubit": "adjoint"}[name]
        results.append(outputs_and_grads(g, latent(g, batch=3)))
    (o1, g1), (o2, g2) = results
    torch.testing.assert_close(o1, o2, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g1, g2, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("ansatz,pixels", [("angle", 4), ("born", 8)])
def test_qiskit_aer_sweep_matches_default_qubit_in_one_run(ansatz, pixels):
    """Batched Qiskit execution: outputs and parameter-shift gradients of every parameter equal
    default.qubit's (backprop) to 1e-6, and the batch with all its shifted copies is one run."""
    ref = generator(device_cfg(), ansatz, pixels)
    z = latent(ref, batch=3)
    o1, g1 = outputs_and_grads(ref, z)
    aer = generator(device_cfg("qiskit.aer"), ansatz, pixels)
    assert aer.qdev.sweep is not None and aer.qdev.diff_method == "parameter-shift"
    o2, g2 = outputs_and_grads(aer, z)
    torch.testing.assert_close(o2, o1, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g2, g1, atol=1e-5, rtol=1e-5)
    angles = aer.lay.n_wires * (1 + 3 * 2)  # noise RY, then per layer RX, RY, RZ per wire
    assert (aer.qdev.sweep.jobs, aer.qdev.sweep.circuits) == (1, 3 * (1 + 2 * angles))
    with torch.no_grad():
        aer(z)  # no gradients wanted: the batch alone
    assert (aer.qdev.sweep.jobs, aer.qdev.sweep.circuits) == (2, 3 * (1 + 2 * angles) + 3)


def test_qiskit_aer_with_shots_and_the_plugin_path():
    """With shots: within shot noise of the exact result; the pennylane-qiskit path
    (device.execution=qnode) gives the same exact outputs as the sweep."""
    ref = generator(device_cfg(), layers=1)
    z = latent(ref, batch=2)
    want = ref(z).detach()
    sampled = generator(device_cfg("qiskit.aer", shots=4000), layers=1)
    got = sampled(z).detach()
    # fractions * pixels and u: each from a few <Z>, each with shot noise <= 1 / sqrt(4000)
    assert torch.max(torch.abs(got - want)) < 0.15 and not torch.equal(got, want)
    plugin = generator(device_cfg("qiskit.aer", execution="qnode"), layers=1)
    assert plugin.qdev.sweep is None
    torch.testing.assert_close(plugin(z[:1]).detach(), want[:1], atol=1e-6, rtol=1e-6)


def test_spsa_gradient_is_unbiased():
    """SPSA: two shifted copies per event; averaged over many events with one latent, its
    gradient estimate points along the exact one (correlation > 0.95, fixed seeds)."""
    z = latent(generator(device_cfg(), layers=1), batch=1).expand(600, -1)
    grads = []
    for extra in ({}, {"diff_method": "spsa"}):
        g = generator(device_cfg("qiskit.aer", **extra), layers=1)
        grads.append(outputs_and_grads(g, z)[1])
    assert g.qdev.sweep.circuits == 600 * 3
    assert torch.corrcoef(torch.stack(grads))[0, 1] > 0.95


def test_noisy_sweep_is_the_distribution_aer_samples():
    """Aer with a fake backend's noise: the sweep's probabilities (density matrix of the
    compacted, routed circuit with the noise of its qubits, then each qubit's readout error)
    equal the frequencies of Aer's own 400k-shot run with the full noise model, within shot
    noise (max |diff| < 4 sigma, sigma <= 0.00079); the restricted model's gate errors are
    those of NoiseModel.from_backend."""
    import json

    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    from qcalo.quantum.sweep import QiskitSweep, _bit_reversal, _restricted_noise

    fake = fake_backend("fake_manila")
    theta = ParameterVector("t", 6)
    qc = QuantumCircuit(3)
    for i in range(3):
        qc.ry(theta[i], i)
    qc.cx(0, 1)
    qc.cx(1, 2)
    for i in range(3):
        qc.rx(theta[3 + i], i)
    values = np.array([[0.3, 1.2, 2.0, 0.5, -0.7, 1.9]])
    sweep = QiskitSweep(AerSimulator(), None, 0, noise_backend=fake)
    got = sweep.run(sweep.compile("key", lambda: (qc, list(theta))), values)[0]
    measured = qc.copy()
    measured.measure_all()
    isa = generate_preset_pass_manager(optimization_level=1, backend=fake, seed_transpiler=0).run(measured)
    sim = AerSimulator(method="density_matrix", noise_model=NoiseModel.from_backend(fake))
    counts = sim.run(isa.assign_parameters(values[0]), shots=400_000, seed_simulator=1).result().get_counts()
    want = np.zeros(8)
    for bits, c in counts.items():
        want[int(bits, 2)] = c
    want = (want / want.sum())[_bit_reversal(3)]
    assert np.abs(got - want).max() < 4 * np.sqrt(0.25 / 400_000)

    def errors(model):
        return sorted(
            json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True, default=str)
            for e in model.to_dict()["errors"]
            if e["type"] == "qerror"
        )

    assert errors(_restricted_noise(fake, list(range(5)))[0]) == errors(NoiseModel.from_backend(fake))


def test_shared_fakes_make_a_training_step_one_job(tmp_path, sim_file):
    """share_fakes: the generator step reuses the discriminator's fake batch, so a step on a
    Qiskit device is one sweep (one job); it learns the same way, and resumes exactly."""
    from qcalo.train import Trainer

    sets = ["device.name=qiskit.aer", "share_fakes=true", "layers=1", "batch_size=4", "val_showers=20"]
    cfg = load_config("quantum", sets=[*sets, f"data={sim_file}"])
    cfg["out"] = str(tmp_path / "run")
    trainer = Trainer(cfg, progress=False)
    cells, energy = next(iter(trainer.stream))
    before = {k: v.clone() for k, v in trainer.g.state_dict().items()}
    trainer.train_step(cells, energy)
    trainer.train_step(cells, energy)
    sweep = trainer.g.qdev.sweep
    angles = 4 * (1 + 3)  # 4 wires: noise RY, one layer of RX, RY, RZ
    assert (sweep.jobs, sweep.circuits) == (2, 2 * 4 * (1 + 2 * angles))
    assert not torch.equal(before["weights"], trainer.g.state_dict()["weights"])
    # 4 steps straight == 2, kill, resume 2 (default.qubit: fast)
    runs = []
    for name, stops in (("straight", [4]), ("resumed", [2, 4])):
        args = ["--generator", "quantum", "--data", str(sim_file), "--out", str(tmp_path / name), "--quiet"]
        for k, stop in enumerate(stops):
            resume = ["--resume"] if k else []
            sets = ["--set", *FAST, "share_fakes=true"]
            assert train_main([*args, *resume, "--max-steps", str(stop), *sets]) == 0
        runs.append(load_checkpoint(tmp_path / name / "last.pt")["models"]["generator"])
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_sweep_settings_are_checked():
    with pytest.raises(ConfigError, match="differentiates by 'parameter-shift' or 'spsa'"):
        generator(device_cfg("qiskit.aer", diff_method="adjoint"))
    with pytest.raises(ConfigError, match="runs on qiskit.aer / qiskit.remote, not 'default.qubit'"):
        make_device(device_cfg(execution="sweep"), 3)
    with pytest.raises(ConfigError, match="set device.shots"):
        make_device(device_cfg("qiskit.remote", backend="fake_manila"), 3)


def test_qiskit_aer_noise_model_and_remote_fake_backend(monkeypatch):
    cfg = device_cfg("qiskit.aer", shots=500, noise_model="fake_manila")
    noisy = generator(cfg, "born", pixels=4, layers=1)
    out = noisy(latent(noisy, batch=2)).detach()
    assert out.shape == (2, 5) and torch.all(torch.isfinite(out))
    remote = generator(device_cfg("qiskit.remote", shots=200, backend="fake_manila"), "born", 4, layers=1)
    assert remote.qdev.device.name == "qiskit.remote" or "remote" in type(remote.qdev.device).__name__.lower()
    from qiskit_ibm_runtime import SamplerV2

    submitted = []
    real_run = SamplerV2.run
    monkeypatch.setattr(
        SamplerV2, "run", lambda self, pubs, **kw: submitted.append(pubs) or real_run(self, pubs, **kw)
    )
    out, grads = outputs_and_grads(remote, latent(remote, batch=2))
    assert out.shape == (2, 5) and torch.all(torch.isfinite(grads)) and grads.abs().sum() > 0
    # the batch and all its shifted copies: one SamplerV2 job, one PUB of 2 x (1 + 2 x 12) rows
    assert len(submitted) == 1 and submitted[0][0][1].shape == (2 * 25, 12)


def test_fake_backend_names():
    assert fake_backend("fake_torino").name == fake_backend("FakeTorino").name == "fake_torino"
    with pytest.raises(ConfigError, match="no fake backend 'fake_nowhere'"):
        fake_backend("fake_nowhere")


def test_ibm_without_account_is_a_clear_error_and_never_shows_a_token(tmp_path, sim_file):
    env = {**os.environ, "HOME": str(tmp_path), "QISKIT_IBM_TOKEN": "s3cr3t-t0ken"}
    proc = subprocess.run(
        [sys.executable, "-m", "qcalo.train", "--config", "configs/quantum_ibm.yaml", "--data", str(sim_file)]
        + ["--out", str(tmp_path / "run"), "--max-steps", "1", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "QISKIT_IBM_TOKEN" in proc.stderr and "device.fake=true" in proc.stderr
    assert "s3cr3t" not in proc.stdout + proc.stderr


def test_other_devices_refuse_qiskit_options():
    with pytest.raises(ConfigError, match="qiskit.aer / qiskit.remote"):
        make_device(device_cfg(noise_model="fake_manila"), 3)
    with pytest.raises(ConfigError, match="device.backend"):
        make_device(device_cfg("qiskit.remote"), 3)
    with pytest.raises(ConfigError, match="no.such"):
        make_device(device_cfg("no.such"), 3)


@pytest.mark.parametrize("prior", [False, True])
def test_model_space_round_trip(small_showers, prior):
    """showers(to_model(cells)) is the reduced view of the cells; u is near standard; with the
    profile prior the pixel values are shares relative to the data's mean profile at E, so
    they average 1 in every pixel (within 5 %), where plain shares span 0.1-2."""
    cells, energy = small_showers
    plugin_cls = get_plugin("quantum")
    cfg = load_config("quantum", sets=[f"profile_prior={prior}"])
    from qcalo.data.dataset import ShowerData

    data = ShowerData.from_arrays(cells, energy, ecal_3dgan())
    plugin = plugin_cls(cfg, ecal_3dgan(), plugin_cls.calibrate(cfg, data, fit_data(data)))
    e = torch.as_tensor(energy, dtype=torch.float32)
    x = plugin.to_model(torch.as_tensor(cells), e)
    back = plugin.showers(x, e).numpy()
    want = View.parse("longitudinal:8").apply(cells, ecal_3dgan())
    np.testing.assert_allclose(back, want, rtol=2e-4, atol=1e-7)
    assert abs(x[:, -1].mean()) < 0.3 and 0.7 < x[:, -1].std() < 1.3
    assert torch.allclose(x[:, :8].mean(1), torch.ones(len(x)), atol=1e-5)
    pixel_means = x[:, :8].mean(0)
    if prior:
        assert torch.all((pixel_means - 1).abs() < 0.05), pixel_means
    else:
        assert pixel_means.min() < 0.3 and pixel_means.max() > 1.5, pixel_means


def test_configs_load_and_default_config_is_the_default():
    defaults = load_config("quantum")
    main = load_config(None, ROOT / "configs" / "quantum.yaml")
    assert {k: v for k, v in main.items() if k != "out"} == {k: v for k, v in defaults.items() if k != "out"}
    aer = load_config(None, ROOT / "configs" / "quantum_aer.yaml")
    assert aer["device.name"] == "qiskit.aer" and aer["device.shots"] > 0
    noisy = load_config(None, ROOT / "configs" / "quantum_aer_noisy.yaml")
    assert noisy["device.noise_model"].startswith("fake_")
    ibm = load_config(None, ROOT / "configs" / "quantum_ibm.yaml", sets=["device.fake=true"])
    assert ibm["device.name"] == "qiskit.remote" and ibm["device.fake"] is True
    twin = load_config(None, ROOT / "configs" / "mlp.yaml")
    assert {k: v for k, v in twin.items() if k != "out"} == {
        k: v for k, v in load_config("mlp").items() if k != "out"
    }


@pytest.fixture(scope="module")
def quantum_run(tmp_path_factory, sim_file):
    out = tmp_path_factory.mktemp("qrun")
    args = ["--generator", "quantum", "--data", str(sim_file), "--out", str(out), "--quiet"]
    assert train_main([*args, "--max-steps", "6", "--set", *FAST]) == 0
    return out, args


def test_quantum_trains_resumes_and_checkpoints(quantum_run, tmp_path, sim_file):
    out, args = quantum_run
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 6 and "weights" in state["models"]["generator"]
    val = [json.loads(x)["val"] for x in (out / "log.jsonl").read_text().splitlines() if '"val"' in x]
    per_bin = val[-1]["per_bin"]
    for name in ("kl_shape_z", "mse_shapes", "w1_pixels_z", "mre_deposited_energy", "mse_corr_longitudinal"):
        assert name in per_bin and len(per_bin[name]) == len(per_bin["energy_bins"])
    # 3 steps, kill, resume for 3 more == 6 straight
    half = tmp_path / "half"
    args_half = [a if a != str(out) else str(half) for a in args]
    assert train_main([*args_half, "--max-steps", "3", "--set", *FAST]) == 0
    assert train_main([*args_half, "--max-steps", "6", "--resume", "--set", *FAST]) == 0
    a, b = load_checkpoint(out / "last.pt"), load_checkpoint(half / "last.pt")
    for k in a["models"]["generator"]:
        assert torch.equal(a["models"]["generator"][k], b["models"]["generator"][k]), k


def test_quantum_generate_and_evaluate_against_full_resolution(quantum_run, tmp_path, sim_file):
    from qcalo.evaluate import main as evaluate_main
    from qcalo.generate import main as generate_main

    out, _ = quantum_run
    gen = tmp_path / "q.h5"
    assert (
        generate_main(
            ["--checkpoint", str(out / "last.pt"), "--energies", "20", "200", "--n", "40", "--seed", "1"]
            + ["--out", str(gen)]
        )
        == 0
    )
    data = open_showers(gen)
    assert data.geometry.shape == (8,) and len(data) == 80
    cells, energy = data.read()
    assert np.all(cells >= 0) and np.all(cells.sum(1) / energy < 0.1)
    rep = tmp_path / "rep"
    common = ["--reference", str(sim_file), "--candidate", f"q={gen}", "--out", str(rep)]
    assert evaluate_main([*common, "--splits", "2", "--classifier-splits", "0", "--no-plots"]) == 0
    report = json.loads((rep / "metrics.json").read_text())
    assert report["settings"]["view"] == "longitudinal:8"
    assert "kl_shape_z" in report["results"]["q"]


def test_transverse_view_and_angle_ansatz_train(tmp_path, sim_file):
    """The configurable parts: another view, the angle ansatz with sub-generators, lightning."""
    args = ["--generator", "quantum", "--data", str(sim_file), "--out", str(tmp_path), "--quiet"]
    sets = [*FAST, "view=transverse:x:4", "ansatz=angle", "sub_generators=2", "device.name=lightning.qubit"]
    assert train_main([*args, "--max-steps", "2", "--set", *sets]) == 0
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["models"]["generator"]["weights"].shape == (2, 2, 3, 2)  # subs, layers, 2+1 wires, RY/RZ
    from qcalo.checkpoint import plugin_from_checkpoint

    plugin, g = plugin_from_checkpoint(state)
    assert plugin.output_geometry.axes == ("x",) and plugin.output_geometry.shape == (4,)


@pytest.mark.parametrize("generator", ["quantum", "mlp"])
def test_a_short_training_learns_the_mean_profile(tmp_path, sim_file, generator):
    """150 steps of the default model, quantum or its classical twin (fixed seeds), bring the
    KL of the mean 8-pixel profile against the training showers at least 5x below the
    untrained generator's."""
    from qcalo.metrics.distances import kl_divergence, mean_shape
    from qcalo.train import Trainer

    cfg = load_config(
        generator, sets=["batch_size=64", "val_showers=20"], overrides={"data": [str(sim_file)]}
    )
    cfg["out"] = str(tmp_path)
    trainer = Trainer(cfg, progress=False)
    cells, energy = trainer.train_data.read()
    want = mean_shape(View.parse("longitudinal:8").apply(cells, ecal_3dgan()))
    e = torch.as_tensor(energy, dtype=torch.float32)

    def kl_now(seed):
        got = trainer.plugin.generate(trainer.g.eval(), e, torch.Generator().manual_seed(seed)).numpy()
        return kl_divergence(want, mean_shape(got))

    before = kl_now(1)
    steps = 0
    while steps < 150:
        trainer.stream.set_epoch(steps)
        for batch in trainer.stream:
            trainer.train_step(*batch)
            steps += 1
    after = kl_now(1)
    assert after < before / 5 and after < 0.03, (before, after)


def test_classical_twin_matches_the_quantum_generator(small_showers):
    """The MLP twin has the default quantum generator's input, output space and (within 5 %)
    parameter count; only the generator differs, so both plug-ins share the discriminator."""
    from qcalo.data.dataset import ShowerData

    cells, energy = small_showers
    data = ShowerData.from_arrays(cells, energy, ecal_3dgan())
    built = {}
    for name in ("quantum", "mlp"):
        cls, cfg = get_plugin(name), load_config(name)
        plugin = cls(cfg, ecal_3dgan(), cls.calibrate(cfg, data, fit_data(data)))
        g, d = plugin.build()
        e = torch.as_tensor(energy[:16], dtype=torch.float32)
        x = g(plugin.latent(e, torch.Generator().manual_seed(0)))
        assert x.shape == (16, 9) and torch.allclose(x[:, :8].sum(1), torch.full((16,), 8.0), atol=1e-4)
        built[name] = (plugin.noise_size, sum(p.numel() for p in g.parameters()), type(d))
    (nq, pq, dq), (nm, pm, dm) = built["quantum"], built["mlp"]
    assert nq == nm and dq is dm and abs(pm - pq) <= 0.05 * pq


@pytest.mark.parametrize("floor", [0.0, 0.3])
def test_noise_floor_keeps_every_qubit_noisy(small_showers, floor):
    """With every trainable noise scale at 0 (a trap: no gradient leads out of it), the events
    of one energy are all alike without a floor and still fluctuate with noise_floor 0.3."""
    from qcalo.data.dataset import ShowerData

    cells, energy = small_showers
    cls, cfg = get_plugin("quantum"), load_config("quantum", sets=[f"noise_floor={floor}"])
    data = ShowerData.from_arrays(cells, energy, ecal_3dgan())
    plugin = cls(cfg, ecal_3dgan(), cls.calibrate(cfg, data, fit_data(data)))
    g, _ = plugin.build()
    with torch.no_grad():
        g.noise_scale.zero_()
        x = g(plugin.latent(torch.full((64,), 50.0), torch.Generator().manual_seed(0)))
    spread = x.std(dim=0).max().item()
    assert (spread > 0.05) if floor else (spread < 1e-5), spread


def test_init_from_refits_the_energy_readout_to_the_data(quantum_run, tmp_path, sim_file):
    """Weights moved to a device that damps <Z> (emulated: the read-out's a halved, c shifted)
    get their u back to the data's mean and spread at once; refit_readout=false keeps them."""
    from qcalo.checkpoint import save_checkpoint
    from qcalo.fits import deposited_energies
    from qcalo.train import Trainer

    out, _ = quantum_run
    state = load_checkpoint(out / "last.pt")
    for models in (state["models"]["generator"], state["models"]["generator_ema"]):
        models["energy_head"] = models["energy_head"] * torch.tensor([0.5, 1.0]) + torch.tensor([0.0, 0.4])
    damped = tmp_path / "damped.pt"
    save_checkpoint(damped, state)

    def u_moments(refit):
        sets = [*FAST, f"init_from={damped}", f"refit_readout={refit}", "refit_showers=500"]
        t = Trainer(
            load_config("quantum", None, sets, {"data": [str(sim_file)], "out": str(tmp_path / refit)}), False
        )
        e, d = deposited_energies(t.train_data)
        energy = torch.as_tensor(e, dtype=torch.float32)
        u_data = t.plugin.standard_total(torch.as_tensor(d, dtype=torch.float32), energy)
        with torch.no_grad():  # a fresh sample, 10 events per training energy
            u = t.g(t.plugin.latent(energy.repeat(10), torch.Generator().manual_seed(99)))[:, -1]
        logged = json.loads((tmp_path / refit / "log.jsonl").read_text().splitlines()[0])
        return u.mean() - u_data.mean(), u.std() / u_data.std(), logged

    shift, ratio, logged = u_moments("false")
    assert abs(ratio - 1) > 0.3 or abs(shift) > 0.3  # the damped read-out is visibly off
    assert "readout_scale" not in logged
    shift, ratio, logged = u_moments("true")
    # tolerances: the refit sees the 180 training showers once (standard errors ~0.05-0.08)
    assert abs(ratio - 1) < 0.15 and abs(shift) < 0.2, (ratio, shift)
    assert logged["init_from"] == str(damped) and logged["readout_scale"] > 1.3
