"""The training loop: runs, logs, checkpoints, resumes bit for bit (even after SIGKILL), stops on
NaN, runs on two processes; generation from its checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from qcalo.checkpoint import load_checkpoint
from qcalo.config import load_config
from qcalo.errors import QcaloError
from qcalo.generate import main as generate_main
from qcalo.train import Trainer, TrainingError
from qcalo.train import main as train_main

FAST = ["batch_size=8", "val_showers=40", "log_every=1", "g_steps=1"]


def cli_args(out, data, *options, sets=FAST):
    """Command-line arguments of a small conv2d run on `data` into `out`."""
    return [
        "--generator",
        "conv2d",
        "--data",
        str(data),
        "--out",
        str(out),
        "--quiet",
        *options,
        "--set",
        *sets,
    ]


def train(out, data, *extra, steps=4):
    assert train_main(cli_args(out, data, "--max-steps", str(steps), sets=[*FAST, *extra])) == 0


def same_weights(a, b):
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    return sa["step"] == sb["step"] and all(
        torch.equal(sa["models"][k][n], sb["models"][k][n]) for k in sa["models"] for n in sa["models"][k]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sim_file):
    out = tmp_path_factory.mktemp("run")
    train(out, sim_file, steps=4)
    return out


def test_run_folder(trained):
    assert {p.name for p in trained.iterdir()} >= {"last.pt", "best.pt", "config.json", "log.jsonl", "plots"}
    records = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "val" not in r]
    assert steps == [1, 2, 3, 4] and all(np.isfinite(r["g_loss"]) for r in records if "g_loss" in r)
    val = [r["val"] for r in records if "val" in r]
    assert len(val) == 1 and {"mse_shapes", "mre_sampling_fraction", "score"} <= set(val[0])
    assert [p.name for p in (trained / "plots").iterdir()] == [
        "epoch000_step4.png"
    ]  # the epoch is not complete
    assert (trained / "plots" / "epoch000_step4.png").stat().st_size > 10_000
    state = torch.load(trained / "last.pt", weights_only=True)  # plain tensors and primitives only
    assert state["config"]["generator"] == "conv2d" and state["step"] == 4
    assert json.loads((trained / "config.json").read_text())["batch_size"] == 8


def test_resume_reproduces_the_uninterrupted_run(tmp_path, sim_file, trained):
    train(tmp_path, sim_file, steps=2)
    assert train_main(cli_args(tmp_path, sim_file, "--max-steps", "4", "--resume")) == 0
    assert same_weights(tmp_path / "last.pt", trained / "last.pt")
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps.count(3) == 1 and steps.count(4) == 2  # one step record and one validation record


def test_validating_mid_epoch_leaves_the_training_unchanged(tmp_path, sim_file, trained):
    train(tmp_path, sim_file, "val_every=2", steps=4)
    assert same_weights(tmp_path / "last.pt", trained / "last.pt")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val" in r] == [2, 4]
    assert (tmp_path / "plots" / "epoch000_step2.png").exists()


def test_weight_average_resumes_exactly_and_generates(tmp_path, sim_file):
    """ema: the checkpoint keeps the average beside the weights; resuming continues both
    bit for bit, and generation uses the average."""
    from qcalo.checkpoint import plugin_from_checkpoint

    whole, split = tmp_path / "whole", tmp_path / "split"
    train(whole, sim_file, "ema=0.9", steps=4)
    train(split, sim_file, "ema=0.9", steps=2)
    assert train_main(cli_args(split, sim_file, "--max-steps", "4", "--resume")) == 0
    assert same_weights(split / "last.pt", whole / "last.pt")
    state = load_checkpoint(whole / "last.pt")
    ema, weights = state["models"]["generator_ema"], state["models"]["generator"]
    moved = [k for k in ema if ema[k].is_floating_point() and not torch.equal(ema[k], weights[k])]
    assert moved  # the average lags the weights
    _, g = plugin_from_checkpoint(state)
    assert all(torch.equal(g.state_dict()[k], ema[k]) for k in ema)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_weight_average_resumes_on_cuda(tmp_path, sim_file):
    """Checkpoints load onto the CPU; a resumed average must follow the weights to the GPU (it
    did not: the first step after --resume on cuda failed with a device mismatch)."""
    train(tmp_path, sim_file, "ema=0.9", "torch_device=cuda", steps=2)
    assert train_main(cli_args(tmp_path, sim_file, "--max-steps", "4", "--resume")) == 0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_init_from_starts_a_new_run_from_a_checkpoints_networks(tmp_path, sim_file, trained):
    """init_from: the new run's networks start as the checkpoint's (the averaged generator when
    it has one), with fresh optimisers and step count; another architecture is a clear error."""
    src = load_checkpoint(trained / "last.pt")
    cfg = load_config(
        "conv2d",
        None,
        [*FAST, f"init_from={trained / 'last.pt'}"],
        {"data": [str(sim_file)], "out": str(tmp_path)},
    )
    trainer = Trainer(cfg, progress=False)
    models = src["models"]
    assert "generator_ema" in models  # the classical default ema 0.99
    for saved, module in ((models["generator_ema"], trainer.g), (models["discriminator"], trainer.d)):
        assert all(torch.equal(v, saved[k]) for k, v in module.state_dict().items())
    assert trainer.step == 0 and not trainer.opt_g.state
    cfg["max_steps"] = 1
    Trainer(cfg, progress=False).fit()  # the starting point is validated and is the first best.pt
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[0] == {"step": 0, "init_from": str(trained / "last.pt")}
    assert records[1]["step"] == 0 and "score" in records[1]["val"]
    assert (tmp_path / "plots" / "start.png").exists() and load_checkpoint(tmp_path / "best.pt")["step"] in (
        0,
        1,
    )
    fresh = Trainer(
        load_config("conv2d", None, FAST, {"data": [str(sim_file)], "out": str(tmp_path)}), progress=False
    )
    assert not torch.equal(next(fresh.g.parameters()), next(trainer.g.parameters()))
    other = load_config(
        "conv3d",
        None,
        [f"init_from={cfg['init_from']}"],
        {"data": [str(sim_file)], "out": str(tmp_path / "c3")},
    )
    with pytest.raises(QcaloError, match="a 'conv2d' checkpoint, this run trains 'conv3d'"):
        Trainer(other, progress=False)
    other.update(generator="conv2d", out=str(trained))
    with pytest.raises(QcaloError, match="is in this run's folder"):
        Trainer(other, progress=False)
    other.update(out=str(tmp_path / "c3"), init_from=str(tmp_path / "missing.pt"))
    with pytest.raises(
        QcaloError, match=r"init_from: checkpoint .*missing.pt does not exist \(train that run"
    ):
        Trainer(other, progress=False)


def test_sigkill_then_resume(tmp_path, sim_file):
    ref = tmp_path / "ref"
    train(ref, sim_file, "checkpoint_every=1", steps=8)
    run = tmp_path / "killed"
    args = cli_args(run, sim_file, "--max-steps", "8", sets=[*FAST, "checkpoint_every=1"])
    cmd = [sys.executable, "-m", "qcalo.train", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (run / "last.pt").exists() and load_checkpoint(run / "last.pt")["step"] >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(run / "last.pt")["step"]
    assert 3 <= killed_at <= 8
    assert subprocess.run([*cmd, "--resume"], capture_output=True).returncode == 0
    assert same_weights(run / "last.pt", ref / "last.pt")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, sim_file):
    cfg = load_config(
        "conv2d",
        None,
        [*FAST, "checkpoint_every=1"],
        {"data": [str(sim_file)], "out": str(tmp_path), "max_steps": 10},
    )
    trainer = Trainer(cfg, progress=False)
    original, calls = trainer.plugin.g_loss, []

    def poisoned(*args, **kwargs):
        loss, parts = original(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) > 3 else loss), parts

    trainer.plugin.g_loss = poisoned
    with pytest.raises(TrainingError, match="generator loss became nan at epoch 0 step 3") as info:
        trainer.fit()
    assert isinstance(info.value, QcaloError) and str(tmp_path) in str(info.value)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3


@pytest.mark.skipif(not hasattr(torch.distributed, "init_process_group"), reason="no torch.distributed")
def test_two_processes(tmp_path, sim_file):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "qcalo.train"]
    args = cli_args(tmp_path, sim_file)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*torchrun, *args, "--max-steps", "2"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["loop"], state["rng"][1]["loop"])  # ranks draw differently
    proc = subprocess.run(
        [*torchrun, *args, "--max-steps", "3", "--resume"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    proc = subprocess.run(
        [sys.executable, "-m", "qcalo.train", *args, "--max-steps", "4", "--resume"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "same number" in proc.stderr


def test_stream_shards_are_disjoint_and_equal(sim_file):
    from qcalo.data.dataset import open_showers

    data = open_showers(sim_file)
    shards = [
        list(data.stream(batch_size=8, seed=1, chunk_rows=16, buffer_chunks=1, rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) > 5
    seen = [set(torch.cat([e for _, e in s]).tolist()) for s in shards]
    assert not seen[0] & seen[1]


def test_generate(tmp_path, trained, sim_file):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        assert (
            generate_main(
                [
                    "--checkpoint",
                    str(trained / "best.pt"),
                    "--energies",
                    "10",
                    "50",
                    "--n",
                    "6",
                    "--seed",
                    "3",
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
    assert a.read_bytes() == b.read_bytes()
    from qcalo.data.dataset import open_showers

    gen = open_showers(a)
    np.testing.assert_array_equal(gen.energy, [10] * 6 + [50] * 6)
    assert gen.geometry.shape == (25, 25, 25) and (gen.read()[0] >= 0).all()
    c = tmp_path / "c.h5"
    assert (
        generate_main(
            [
                "--checkpoint",
                str(trained / "last.pt"),
                "--energies-from",
                str(sim_file),
                "--out",
                str(c),
                "--quiet",
            ]
        )
        == 0
    )
    np.testing.assert_allclose(open_showers(c).energy, open_showers(sim_file).energy, rtol=1e-6)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qcalo.evaluate",
            "--reference",
            str(sim_file),
            "--candidate",
            str(c),
            "--out",
            str(tmp_path / "rep"),
            "--no-plots",
            "--splits",
            "2",
            "--n-bins",
            "2",
            "--cell-sample",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("content, message", [(None, "does not exist"), (b"junk", "cannot be read")])
def test_bad_checkpoint(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qcalo.generate",
            "--checkpoint",
            str(path),
            "--energies",
            "10",
            "--n",
            "1",
            "--out",
            str(tmp_path / "o.h5"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_full_epoch_is_validated_under_its_own_number(tmp_path, sim_file):
    args = cli_args(
        tmp_path, sim_file, "--epochs", "1", sets=["batch_size=32", "val_showers=40", "g_steps=1"]
    )
    assert train_main(args) == 0
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["epoch000.png"]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and state["batch"] == 0 and state["step"] == 6  # ceil(180 / 32)
