"""The quantum GAN as a training-loop plug-in: a PennyLane generator against a torch MLP.

The representation, discriminator and losses are the reduced-view GAN's (`qcalo.quantum.reduced`),
shared with the classical twin (`classical/twin.py`); only the generator is quantum.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qcalo.data.dataset import ShowerData
from qcalo.errors import check_choice
from qcalo.fits import deposited_energies
from qcalo.quantum.ansatz import ENTANGLERS, layout
from qcalo.quantum.devices import DEFAULTS as DEVICE_DEFAULTS
from qcalo.quantum.devices import make_device
from qcalo.quantum.generator import QuantumGenerator
from qcalo.quantum.reduced import ReducedGanPlugin


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
        "refit_readout": True,  # init_from: refit a and c on this run's device to the data's u
        "refit_showers": 2000,  # generated for that refit
        **DEVICE_DEFAULTS,
    }

    def __init__(self, config: dict[str, Any], geometry, calibration: dict[str, Any]):
        super().__init__(config, geometry, calibration)
        check_choice("entangler", config["entangler"], ENTANGLERS)
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
            c["noise_floor"],
        )
        return g, self.reduced_discriminator()

    @torch.no_grad()
    def refit_to_data(self, generator: nn.Module, data: ShowerData, gen: torch.Generator) -> dict[str, float]:
        """Refit the energy read-out u = a asin<Z> + c so that, at the training energies, u has the
        data's mean and spread on this run's device. Device noise damps <Z> by one factor for
        every event, so weights trained on an exact simulator keep their profile there but make
        the total energy's spread too narrow; a gradient fine-tune through noisy SPSA estimates
        moves a slowly, the refit puts it right at once."""
        if not self.config["refit_readout"]:
            return {}
        e, d = deposited_energies(data)
        energy = torch.as_tensor(e, dtype=torch.float32)
        u_data = self.standard_total(torch.as_tensor(d, dtype=torch.float32), energy)
        pick = torch.randperm(len(e), generator=gen)[: self.config["refit_showers"]]
        u_gen = generator(self.latent(energy[pick], gen))[:, -1]
        scale = (u_data.std() / u_gen.std()).item()
        a, c = generator.energy_head.tolist()
        new_c = (c - u_gen.mean().item()) * scale + u_data.mean().item()
        generator.energy_head.copy_(torch.tensor([a * scale, new_c]))
        return {"readout_scale": scale, "readout_a": a * scale, "readout_c": new_c}

    @property
    def noise_size(self) -> int:
        return self.layout.n_wires * self.config["sub_generators"]
