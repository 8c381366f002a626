"""The quantum GAN as a training-loop plug-in: a PennyLane generator against a torch MLP.

The representation, discriminator and losses are the reduced-view GAN's (`qcalo.reduced`),
shared with the classical twin (`classical/twin.py`); only the generator is quantum.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from qcalo.errors import ConfigError
from qcalo.quantum.ansatz import ENTANGLERS, layout
from qcalo.quantum.devices import DEFAULTS as DEVICE_DEFAULTS
from qcalo.quantum.devices import make_device
from qcalo.quantum.generator import QuantumGenerator
from qcalo.reduced import ReducedGanPlugin


class QuantumPlugin(ReducedGanPlugin):
    name = "quantum"
    not_exportable = "its circuits run on a PennyLane device, not in an ONNX graph"
    defaults = {
        **ReducedGanPlugin.defaults,
        "ansatz": "born",  # born (probabilities of basis states) or angle (a qubit per pixel)
        "layers": 4,
        "entangler": "ring",  # ring, linear, all, none (CNOTs)
        "reupload": True,  # encode the energy in every layer, or only before the first
        "sub_generators": 1,  # born: patches of 2^q pixels, one circuit each
        "ancillas": 0,  # born: ancilla qubits per sub-generator (post-selected on |0>)
        "init_scale": 0.1,  # std of the initial rotation angles
        "noise_floor": 0.3,  # noise angles = N(0, 1) x max(|trainable scale|, this), per qubit
        "energy_readout": "asin",  # u from the energy qubit: asin (a asin<Z> + c) or linear (a <Z> + c)
        **DEVICE_DEFAULTS,
    }

    def __init__(self, config: dict[str, Any], geometry, calibration: dict[str, Any]):
        super().__init__(config, geometry, calibration)
        if config["entangler"] not in ENTANGLERS:
            raise ConfigError(f"entangler '{config['entangler']}': expected one of {', '.join(ENTANGLERS)}")
        self.layout = layout(config["ansatz"], self.pixels, config["sub_generators"], config["ancillas"])

    def build(self) -> tuple[nn.Module, nn.Module]:
        c = self.config
        qdev = make_device(c, self.layout.n_wires, seed=c["seed"])
        g = QuantumGenerator(
            self.layout,
            qdev,
            c["sub_generators"],
            c["layers"],
            c["entangler"],
            c["reupload"],
            c["init_scale"],
            c["energy_readout"],
            c["noise_floor"],
        )
        return g, self.reduced_discriminator()

    @property
    def noise_size(self) -> int:
        return self.layout.n_wires * self.config["sub_generators"]
