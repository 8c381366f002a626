"""`python -m qcalo.export`: a trained generator as one ONNX file, optionally int8, accuracy-guarded.

    python -m qcalo.export --checkpoint runs/conv2d/best.pt --out conv2d.onnx
    python -m qcalo.export --checkpoint runs/conv2d/best.pt --out conv2d.onnx --int8 [--calibration DATA.h5]
    python -m qcalo.generate --onnx conv2d.int8.onnx --energies 10 50 100 --n 1000 --out gen.h5

The ONNX model takes (noise [N, k] ~ N(0, 1), energy [N] GeV) and returns showers in GeV: the
plug-in's conditioning and output scaling are part of the graph, so onnxruntime alone runs it.
After export, onnxruntime's output is checked against torch on random inputs.

--int8 quantizes statically in QDQ format (int8 weights, per-channel or per-tensor, whichever
is more accurate; uint8 activations), calibrated on noise x energies drawn from the data, after
onnxruntime's pre-processing (without it the Conv behind a Resize stays fp32). Accuracy guard:
fp32 and int8 generate the same validation sample (same noise) and both are compared with the
reference showers by qcalo.metrics (shower-shape MSE, sampling-fraction error), energy bin by
energy bin, and int8's mean sampling fraction with fp32's. If int8 is worse than fp32 by more
than --tolerance in any bin (or its sampling fraction leaves fp32's by more), the node groups whose
quantization costs most are kept in fp32, one by one, until it is not. MODEL.json, next to the
model, reports all of it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qcalo import cli
from qcalo.atomic import atomic_path, write_text
from qcalo.data.builtin import ENERGY_RANGE, builtin_dataset
from qcalo.data.dataset import ShowerData, open_showers
from qcalo.errors import ConfigError, DataError, QcaloError
from qcalo.metrics.binning import EnergyBins
from qcalo.metrics.compare import compare
from qcalo.metrics.observables import compute_features
from qcalo.onnx_generator import INPUTS, METADATA_KEY, OnnxGenerator
from qcalo.plugins import GanPlugin, gaussian_noise

FP32_TOLERANCE = 1e-4  # max |onnxruntime - torch| / max |torch| accepted after export
GUARD_METRICS = ("mse_shapes", "mre_sampling_fraction")
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # a fall-back group starts at each


class ExportError(QcaloError):
    """An export whose result does not do what the checkpoint does."""


class ExportedGenerator(nn.Module):
    """(noise, energy) -> showers in GeV: the plug-in's conditioning and scaling around the network."""

    def __init__(self, plugin: GanPlugin, generator: nn.Module):
        super().__init__()
        self.plugin = plugin
        self.generator = generator

    def forward(self, noise: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        p = self.plugin
        return p.showers(self.generator(p.condition(noise, energy)), energy)


def _quiet():
    """The exporters' progress prints and warnings (torchvision missing, ...) are not the user's."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "torch._dynamo", "torch.export", "root"):
        logger = logging.getLogger(name)
        stack.callback(logger.setLevel, logger.level)
        logger.setLevel(logging.ERROR)
    return stack


def random_inputs(n: int, noise_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise and log-uniform energies over the built-in range (2-500 GeV) for checks."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = (math.log(e) for e in ENERGY_RANGE)
    energy = torch.exp(lo + (hi - lo) * torch.rand(n, generator=gen))
    return gaussian_noise(n, noise_size, gen), energy


def export_onnx(checkpoint: str | Path, out: str | Path, check_showers: int = 16) -> dict[str, Any]:
    """Write the checkpoint's generator to `out` (one self-contained file, dynamic batch) after
    checking onnxruntime against torch; returns the fp32 part of the report."""
    from qcalo.checkpoint import load_checkpoint, plugin_from_checkpoint

    out = Path(out)
    state = load_checkpoint(checkpoint)
    plugin, generator = plugin_from_checkpoint(state)
    if plugin.not_exportable:
        raise ConfigError(
            f"{checkpoint}: generator '{plugin.name}' cannot be exported to ONNX: {plugin.not_exportable}"
        )
    model = ExportedGenerator(plugin, generator).eval()
    example = random_inputs(2, plugin.noise_size, seed=0)
    batch = torch.export.Dim("batch", min=1)
    meta = {
        "generator": plugin.name,
        "noise_size": plugin.noise_size,
        "geometry": plugin.output_geometry.to_json(),
        "checkpoint": str(checkpoint),
        "step": int(state["step"]),
    }
    with atomic_path(out) as tmp, _quiet():
        try:
            torch.onnx.export(
                model,
                example,
                str(tmp),
                dynamo=True,
                external_data=False,
                input_names=list(INPUTS),
                output_names=["showers"],
                dynamic_shapes={"noise": {0: batch}, "energy": {0: batch}},
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types; all mean the same
            raise ExportError(
                f"torch.onnx.export failed for {checkpoint}: {type(exc).__name__}: {exc}"
            ) from None
        _set_metadata(tmp, meta)
        deviation = _check_fp32(tmp, model, plugin.noise_size, check_showers)
        if not deviation <= FP32_TOLERANCE:
            raise ExportError(
                f"onnxruntime's output differs from torch's by {deviation:.3g} (max relative; tolerance "
                f"{FP32_TOLERANCE:g}); {out} was not written"
            )
    return {"path": str(out), "bytes": out.stat().st_size, "check_max_rel_deviation": deviation, **meta}


def _set_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    model.doc_string = f"qcalo {meta['generator']} generator: (noise, energy GeV) -> showers GeV"
    onnx.save(model, str(path))


def _check_fp32(path: Path, model: nn.Module, noise_size: int, n: int) -> float:
    """Max |onnxruntime - torch| / max |torch| on random inputs, at a batch size other than the
    example's (so the dynamic batch axis is exercised too)."""
    noise, energy = random_inputs(n, noise_size, seed=1)
    with torch.no_grad():
        ref = model(noise, energy).numpy()
    got = OnnxGenerator(path).run(noise.numpy(), energy.numpy())
    if got.shape != ref.shape:
        return math.inf
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


# --------------------------------------------------------------------------------------------
# int8


class _Calibration:
    """onnxruntime CalibrationDataReader: noise x data energies, the way the generator is used."""

    def __init__(self, noise: np.ndarray, energy: np.ndarray, batch: int = 16):
        self.batches = [
            {"noise": noise[i : i + batch], "energy": energy[i : i + batch]}
            for i in range(0, len(energy), batch)
        ]
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position == len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]

    def rewind(self) -> None:
        self.position = 0


def _quantize(
    pre: Path, out: Path, calibration: _Calibration, per_channel: bool, exclude: Sequence[str]
) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        get_next = staticmethod(calibration.get_next)

    calibration.rewind()
    with _quiet():
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=list(exclude),
        )


class _Guard:
    """Generates the validation sample with a model and scores it against the reference."""

    def __init__(self, cells: np.ndarray, energy: np.ndarray, noise: np.ndarray, geometry, threads: int):
        self.ref = compute_features(ShowerData.from_arrays(cells, energy, geometry))
        # equal-population bins: with the guard's log-uniform energies they are about log-spaced,
        # so the low energies (coarsest in int8: their cells use a sliver of the calibrated range)
        # get bins of their own
        k = max(1, min(10, len(energy) // 50))
        edges = np.unique(np.quantile(energy, np.linspace(0, 1, k + 1)))
        edges[-1] *= 1 + 1e-9
        self.bins = EnergyBins.from_edges(edges) if len(edges) > 1 else EnergyBins.from_energies(energy)
        self.noise, self.energy, self.geometry, self.threads = (
            noise,
            energy.astype(np.float32),
            geometry,
            threads,
        )
        self.fp32 = None  # the fp32 model's showers: every int8 candidate is compared with them too

    def metrics(self, path: Path, fp32: bool = False) -> dict[str, float]:
        """The guard's metrics of a model (`fp32`: the reference model, scored first), and its time
        per shower (batches of 64; a rough figure that tells whether int8 pays on this machine:
        bench/bench_onnx.py measures properly)."""
        model = OnnxGenerator(path, self.threads)
        model.run(self.noise[:1], self.energy[:1])  # warm-up
        t0 = time.perf_counter()
        cells = np.concatenate(
            [
                model.run(self.noise[i : i + 64], self.energy[i : i + 64])
                for i in range(0, len(self.energy), 64)
            ]
        )
        ms = 1e3 * (time.perf_counter() - t0) / len(self.energy)
        cand = compute_features(ShowerData.from_arrays(cells, self.energy, self.geometry))
        res = compare(self.ref, cand, self.bins, classifier=False)
        out: dict[str, Any] = {m: float(res[m]["overall"]) for m in GUARD_METRICS}
        out.update({f"{m}_per_bin": [float(v) for v in res[m]["per_bin"]] for m in GUARD_METRICS})
        if fp32:
            self.fp32 = cand
        else:  # against fp32 (same noise): a bias that happens to move towards the data still counts
            shift = compare(self.fp32, cand, self.bins, classifier=False)["mre_sampling_fraction"]
            out["sf_shift_vs_fp32"] = float(np.nanmax(shift["per_bin"]))
        return {**out, "ms_per_shower": ms}


def node_groups(graph) -> dict[str, list[str]]:
    """The graph's nodes in groups that fall back to fp32 together: each weighted node (Conv,
    Gemm, ...) with the activations, reshapes, ... behind it up to the next weighted node; nodes
    before the first one join the first group. Keeping every group in fp32 is the fp32 model."""
    producer = {o: n.name for n in graph.node for o in n.output}
    group_of: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    head: list[str] = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        if node.op_type in WEIGHTED:
            key = node.name
            groups[key] = head + [node.name] if not groups else [node.name]
        else:
            parents = [group_of[producer[i]] for i in node.input if producer.get(i) in group_of]
            if not parents:
                head.append(node.name)
                continue
            key = parents[-1]
            groups[key].append(node.name)
        group_of[node.name] = key
    if not groups:
        raise ExportError("the model has no Conv, ConvTranspose, Gemm or MatMul node to quantize")
    return groups


def _excess(int8: dict[str, Any], fp32: dict[str, Any], tolerance: float = 0.0) -> float:
    """How much worse than fp32 int8 is beyond `tolerance`, in its worst energy bin, summed over
    the guard's metrics, plus how far int8's mean sampling fraction leaves fp32's in any bin
    beyond `tolerance` (0: within). Per bin, because a quantization bias can move one energy's
    sampling fraction away from the data while the average over bins hides it; in a bin where
    fp32 is nearly exact, the change is measured against fp32's mean error over the bins."""
    total = 0.0
    for m in GUARD_METRICS:
        a, b = np.asarray(int8[f"{m}_per_bin"]), np.asarray(fp32[f"{m}_per_bin"])
        ok = np.isfinite(a) & np.isfinite(b)
        scale = np.maximum(b[ok], max(float(b[ok].mean()), 1e-30)) if ok.any() else np.ones(0)
        total += max(float(((a[ok] - b[ok]) / scale).max(initial=0.0)) - tolerance, 0.0)
    # and int8's own sampling fraction may not leave fp32's by more than the tolerance in any bin
    return total + max(int8.get("sf_shift_vs_fp32", 0.0) - tolerance, 0.0)


def _within(int8: dict[str, Any], fp32: dict[str, Any], tolerance: float) -> bool:
    return _excess(int8, fp32, tolerance) == 0.0


def _log_uniform_sample(data: ShowerData, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n showers drawn without replacement with probability ~ 1/E: as many per e-fold of energy as
    the data allows, so a flat 2-500 GeV set still puts enough low-energy showers in the guard."""
    e_all = data.energy
    p = 1.0 / e_all
    pick = np.zeros(len(e_all), bool)
    pick[rng.choice(len(e_all), min(n, len(e_all)), replace=False, p=p / p.sum())] = True
    cells, energy, pos = [], [], 0
    for c, e in data.chunks():
        sel = pick[pos : pos + len(e)]
        cells.append(c[sel])
        energy.append(e[sel])
        pos += len(e)
    return np.concatenate(cells), np.concatenate(energy)


def quantize_int8(
    fp32: str | Path,
    out: str | Path,
    data: ShowerData,
    tolerance: float = 0.10,
    calibration_showers: int = 256,
    guard_showers: int = 1000,
    seed: int = 0,
    threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Static QDQ int8 of an exported fp32 model, accuracy-guarded against `data` (module doc).

    Calibration energies come from one part of `data`, the guard's reference showers from
    another (a seeded split), so the guard judges on showers calibration never saw.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, out = Path(fp32), Path(out)
    model = OnnxGenerator(fp32)
    if tuple(data.geometry.shape) != tuple(model.geometry.shape):
        paths = ", ".join(str(f.path) for f in data.files)
        raise DataError(
            paths, f"has geometry {data.geometry.describe()}; the generator makes {model.geometry.describe()}"
        )
    if len(data) < 100:
        raise ConfigError(f"int8 calibration and guard need at least 100 showers; the data has {len(data)}")
    calib_data, guard_data = data.split(min(0.5, 4 * guard_showers / len(data)), seed=seed)
    rng = np.random.default_rng(seed)
    cells, energy = _log_uniform_sample(guard_data, guard_showers, rng)
    calib_energy = rng.choice(calib_data.energy, min(calibration_showers, len(calib_data))).astype(np.float32)
    gen = torch.Generator().manual_seed(seed)
    calib = _Calibration(gaussian_noise(len(calib_energy), model.noise_size, gen).numpy(), calib_energy)
    guard = _Guard(
        cells, energy, gaussian_noise(len(energy), model.noise_size, gen).numpy(), model.geometry, threads
    )

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        pre, candidate = Path(work) / "pre.onnx", Path(work) / "int8.onnx"
        with _quiet():
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        groups = node_groups(onnx.load(str(pre)).graph)
        reference = guard.metrics(fp32, fp32=True)
        trials: list[dict[str, Any]] = []

        def trial(per_channel: bool, fp32_groups: Sequence[str]) -> dict[str, float]:
            exclude = [n for g in fp32_groups for n in groups[g]]
            _quantize(pre, candidate, calib, per_channel, exclude)
            m = guard.metrics(candidate)
            trials.append({"per_channel": per_channel, "fp32_groups": list(fp32_groups), **m})
            return m

        # per-channel weights where they help: both ways, the better one goes on
        scores = {pc: trial(pc, []) for pc in (True, False)}
        per_channel = min(scores, key=lambda pc: _excess(scores[pc], reference))
        kept: list[str] = []
        final = scores[per_channel]
        if not _within(final, reference, tolerance):
            # each group's cost: the model with only that group quantized (as accuracy-driven tuners do)
            alone = {g: [h for h in groups if h != g] for g in groups}
            cost = {g: _excess(trial(per_channel, alone[g]), reference) for g in groups}
            log(f"qcalo.export: int8 misses the {tolerance:.0%} tolerance; keeping costliest nodes in fp32")
            for g in sorted(groups, key=cost.get, reverse=True):
                kept.append(g)
                final = trial(per_channel, kept)
                if _within(final, reference, tolerance):
                    break
        if trials[-1]["fp32_groups"] != kept or trials[-1]["per_channel"] != per_channel:
            _quantize(pre, candidate, calib, per_channel, [n for g in kept for n in groups[g]])
        _set_metadata(candidate, {**model.info, "precision": "int8"})
        os.replace(candidate, out)  # same folder: atomic
    return {
        "path": str(out),
        "bytes": out.stat().st_size,
        "tolerance": tolerance,
        "per_channel": per_channel,
        "quantized_groups": [g for g in groups if g not in kept],
        "fp32_groups": {g: groups[g] for g in kept},
        "guard_showers": len(energy),
        "calibration_showers": len(calib_energy),
        "metrics_fp32": reference,
        "metrics_int8": final,
        "trials": trials,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcalo.export", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by qcalo.train")
    p.add_argument("--out", type=Path, required=True, help="MODEL.onnx (int8: MODEL.int8.onnx beside it)")
    p.add_argument("--int8", action="store_true", help="also write a static int8 (QDQ) model")
    p.add_argument(
        "--calibration",
        nargs="+",
        metavar="FILE",
        help="showers for calibration and the guard (default: built-in)",
    )
    p.add_argument("--tolerance", type=float, default=0.10, help="int8 may be this much worse than fp32")
    p.add_argument("--calibration-showers", type=int, default=256)
    p.add_argument("--guard-showers", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads for the guard (0: all cores)")
    args = p.parse_args(argv)
    if args.out.suffix != ".onnx":
        raise ConfigError(f"--out {args.out}: expected a file name ending in .onnx")
    if not args.tolerance >= 0:
        raise ConfigError("--tolerance must be >= 0 (0.10 = 10 %)")
    if args.calibration_showers <= 0 or args.guard_showers < 50:
        raise ConfigError("--calibration-showers must be > 0 and --guard-showers >= 50")
    report: dict[str, Any] = {"fp32": export_onnx(args.checkpoint, args.out)}
    fp = report["fp32"]
    print(
        f"wrote {args.out} ({fp['bytes'] / 1e6:.2f} MB); onnxruntime vs torch: max relative deviation "
        f"{fp['check_max_rel_deviation']:.2g} (tolerance {FP32_TOLERANCE:g})"
    )
    if args.int8:
        if args.calibration:
            data = open_showers(args.calibration)
        else:
            data = open_showers(builtin_dataset())
        int8_path = args.out.with_suffix(".int8.onnx")
        q = quantize_int8(
            args.out,
            int8_path,
            data,
            args.tolerance,
            args.calibration_showers,
            args.guard_showers,
            threads=args.threads,
        )
        report["int8"] = q
        m8, m32 = q["metrics_int8"], q["metrics_fp32"]
        print(
            f"wrote {int8_path} ({q['bytes'] / 1e6:.2f} MB, "
            f"{'per-channel' if q['per_channel'] else 'per-tensor'} "
            f"weights); {len(q['quantized_groups'])} node groups int8, "
            f"kept in fp32: {list(q['fp32_groups']) or 'none'}"
        )
        for m in (*GUARD_METRICS, "ms_per_shower"):
            print(f"  {m}: fp32 {m32[m]:.4g}  int8 {m8[m]:.4g}  ({m8[m] / max(m32[m], 1e-30) - 1:+.1%})")
        print(f"  int8 mean sampling fraction vs fp32's, worst energy bin: {m8['sf_shift_vs_fp32']:.1%}")
        if m8["ms_per_shower"] > m32["ms_per_shower"]:
            print(
                "  note: int8 ran slower than fp32 here (onnxruntime's int8 kernels do not pay for every "
                "model on every CPU); measure with bench/bench_onnx.py and keep the faster"
            )
    write_text(args.out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
