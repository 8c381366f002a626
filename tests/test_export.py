"""ONNX export and int8: onnxruntime reproduces torch, the int8 guard holds, bad inputs are named."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from qcalo.config import load_config
from qcalo.data.dataset import open_showers
from qcalo.data.geometry import parse_geometry
from qcalo.data.writer import write_showers
from qcalo.errors import QcaloError
from qcalo.export import FP32_TOLERANCE, GUARD_METRICS, export_onnx, quantize_int8
from qcalo.export import main as export_main
from qcalo.generate import main as generate_main
from qcalo.onnx_generator import OnnxGenerator
from qcalo.train import untrained_checkpoint


def checkpoint(tmp_path_factory, name, data, sets=()):
    """A step-0 checkpoint of `name` (random weights: what export and int8 must handle anyway)."""
    out = tmp_path_factory.mktemp(name)
    return untrained_checkpoint(load_config(name, sets=[f"out={out}", f"data={data}", *sets]))


@pytest.fixture(scope="module", params=["conv3d", "conv2d"])
def exported(request, tmp_path_factory, sim_file):
    ckpt = checkpoint(tmp_path_factory, request.param, sim_file)
    out = ckpt.parent / "model.onnx"
    return ckpt, out, export_onnx(ckpt, out)


def test_export_is_one_file_with_dynamic_batch_and_matches_torch(exported, tmp_path):
    ckpt, path, report = exported
    assert report["check_max_rel_deviation"] <= FP32_TOLERANCE
    assert sorted(p.name for p in path.parent.glob("model.onnx*")) == ["model.onnx"]  # no .onnx.data
    model = OnnxGenerator(path)
    # Conv3D: [E/100, z] (energy_input concat), Conv2D: z E/100
    assert model.geometry.shape == (25, 25, 25)
    assert model.noise_size == (199 if "conv3d" in str(ckpt) else 200)
    # the same seed gives the same showers from the checkpoint and from the ONNX file (batch 7 and a
    # last batch of 3: the batch axis is dynamic)
    common = ["--energies", "10", "100", "--n", "5", "--seed", "3", "--batch-size", "7", "--quiet"]
    assert generate_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "t.h5"), *common]) == 0
    assert (
        generate_main(["--onnx", str(path), "--threads", "1", "--out", str(tmp_path / "o.h5"), *common]) == 0
    )
    (a, ea), (b, eb) = open_showers(tmp_path / "t.h5").read(), open_showers(tmp_path / "o.h5").read()
    assert np.array_equal(ea, eb) and a.shape == b.shape == (10, 25, 25, 25)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()


def test_energy_scaled_output_is_part_of_the_exported_graph(tmp_path_factory, sim_file):
    ckpt = checkpoint(tmp_path_factory, "conv3d", sim_file, ["output_scale=energy"])
    report = export_onnx(ckpt, ckpt.parent / "model.onnx")
    assert report["check_max_rel_deviation"] <= FP32_TOLERANCE


def test_int8_is_guarded_and_reported(exported, sim_file, tmp_path):
    """Tolerance 0: int8 may not be worse than fp32 on any guard metric, so node groups are kept in fp32
    whenever the fully quantized model is; the result must meet it either way."""
    _, path, _ = exported
    out = tmp_path / "model.int8.onnx"
    q = quantize_int8(
        path, out, open_showers(sim_file), tolerance=0.0, calibration_showers=32, guard_showers=100, log=print
    )
    m8, m32 = q["metrics_int8"], q["metrics_fp32"]
    for m in GUARD_METRICS:  # in every energy bin, hence overall too
        assert all(a <= b for a, b in zip(m8[f"{m}_per_bin"], m32[f"{m}_per_bin"], strict=True) if a == a)
        assert m8[m] <= m32[m]
    # int8 weights: 4x smaller when every group is quantized; at tolerance 0 the sampling
    # fraction may not move at all, so most or all groups end up in fp32
    assert q["bytes"] < path.stat().st_size / (2.5 if not q["fp32_groups"] else 0.99)
    assert q["metrics_int8"].get("sf_shift_vs_fp32", 0.0) == 0.0 or q["quantized_groups"]
    graph = onnx.load(str(out)).graph
    producer = {o: n for n in graph.node for o in n.output}
    weighted = [n for n in graph.node if n.name in q["fp32_groups"] or n.name in q["quantized_groups"]]
    assert {n.name for n in weighted} == set(q["fp32_groups"]) | set(q["quantized_groups"])
    for node in weighted:  # a group is named after its weighted node: int8 weights iff quantized
        weight_from = producer.get(node.input[1])
        quantized = weight_from is not None and weight_from.op_type == "DequantizeLinear"
        assert quantized == (node.name in q["quantized_groups"]), node.name
    assert len(q["trials"]) >= 2 + (len(weighted) if q["fp32_groups"] else 0)
    model = OnnxGenerator(out)
    cells = model.run(np.random.default_rng(0).normal(size=(4, model.noise_size)), np.full(4, 50.0))
    assert cells.shape == (4, 25, 25, 25) and np.isfinite(cells).all()


def test_cli_writes_both_models_and_the_report(tmp_path_factory, sim_file, capsys):
    ckpt = checkpoint(tmp_path_factory, "conv2d", sim_file)
    out = ckpt.parent / "g.onnx"
    args = ["--checkpoint", str(ckpt), "--out", str(out), "--int8", "--calibration", str(sim_file)]
    assert (
        export_main([*args, "--calibration-showers", "32", "--guard-showers", "100", "--threads", "1"]) == 0
    )
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["fp32"]["generator"] == "conv2d" and report["int8"]["path"] == str(
        out.with_suffix(".int8.onnx")
    )
    assert OnnxGenerator(out.with_suffix(".int8.onnx")).info["precision"] == "int8"
    q = report["int8"]
    assert q["quantized_groups"] and q["bytes"] < report["fp32"]["bytes"]
    assert q["metrics_int8"]["sf_shift_vs_fp32"] <= 0.10  # the default tolerance
    printed = capsys.readouterr().out
    assert "kept in fp32" in printed and "mse_shapes" in printed


def test_bad_inputs(tmp_path_factory, sim_file, tmp_path):
    ckpt = checkpoint(tmp_path_factory, "conv2d", sim_file)
    with pytest.raises(QcaloError, match="does not exist"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "m.onnx")
    with pytest.raises(QcaloError, match="expected a file name ending in .onnx"):
        export_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "m.h5")])
    quantum = checkpoint(tmp_path_factory, "quantum", sim_file)
    with pytest.raises(QcaloError, match="cannot be exported to ONNX"):
        export_onnx(quantum, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()

    # an ONNX model that is not a qcalo generator
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    other = tmp_path / "other.onnx"
    onnx.save(
        helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])),
        other,
    )
    with pytest.raises(QcaloError, match=r"other.onnx: is not a qcalo generator: inputs \['x'\]"):
        OnnxGenerator(other)
    with pytest.raises(QcaloError, match="not a qcalo generator"):
        generate_main(["--onnx", str(other), "--energies", "10", "--n", "1", "--out", str(tmp_path / "g.h5")])
    assert not (tmp_path / "g.h5").exists()
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(QcaloError, match="junk.onnx: is not a readable ONNX model"):
        OnnxGenerator(tmp_path / "junk.onnx")

    # a calibration file of another geometry
    fp32 = tmp_path / "m.onnx"
    export_onnx(ckpt, fp32)
    small = write_showers(
        tmp_path / "small.h5", np.ones((120, 5, 5, 5)), np.full(120, 10.0), parse_geometry("5x5x5"), "tests"
    )
    with pytest.raises(QcaloError, match=r"small.h5: has geometry .*5.*; the generator makes"):
        quantize_int8(fp32, tmp_path / "m.int8.onnx", open_showers(small))
    assert not (tmp_path / "m.int8.onnx").exists()
