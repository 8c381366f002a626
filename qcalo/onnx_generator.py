"""A generator exported by `qcalo.export`, run with onnxruntime.

The model takes (noise [N, k] ~ N(0, 1), energy [N] in GeV) and returns showers in GeV; its
metadata (key "qcalo") holds the output geometry and the noise size, so `qcalo.generate --onnx`
writes the same files as from a checkpoint, and the same seed gives the same noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qcalo.data.geometry import Geometry
from qcalo.errors import ConfigError, DataError
from qcalo.plugins import gaussian_noise

METADATA_KEY = "qcalo"
INPUTS = ("noise", "energy")


def session(path: str | Path, threads: int = 0):
    """An onnxruntime CPU session (threads 0: onnxruntime's default, one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # no per-node warnings on stderr
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxGenerator:
    """A qcalo generator in an ONNX file; checks that the file is one before anything runs."""

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"ONNX model {self.path} does not exist")
        try:
            self.session = session(self.path, threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for any bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(
                self.path, f"is not a readable ONNX model ({type(exc).__name__}: {first})"
            ) from None
        names = tuple(i.name for i in self.session.get_inputs())
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if names != INPUTS or meta is None:
            raise DataError(
                self.path,
                f"is not a qcalo generator: inputs {list(names)}"
                f"{'' if meta else ', no qcalo metadata'}; expected inputs {list(INPUTS)} "
                "(noise [N, k], energy [N] GeV) and metadata written by python -m qcalo.export",
            )
        self.info: dict[str, Any] = json.loads(meta)
        self.geometry = Geometry.from_json(self.info["geometry"])
        self.noise_size = int(self.info["noise_size"])

    def run(self, noise: np.ndarray, energy: np.ndarray) -> np.ndarray:
        """Showers (N, *geometry.shape) in GeV for given noise and primary energies."""
        feed = {"noise": np.asarray(noise, np.float32), "energy": np.asarray(energy, np.float32)}
        return self.session.run(None, feed)[0]

    def generate(self, energy: np.ndarray, gen: torch.Generator) -> np.ndarray:
        """Showers for primary energies (GeV), noise drawn from `gen` as a checkpoint would."""
        return self.run(gaussian_noise(len(energy), self.noise_size, gen).numpy(), energy)
