"""The quantum generator's classical twin: a small MLP in the quantum GAN's place.

Same reduced showers, conditioning, discriminator and losses (`qcalo.quantum.reduced`), same latent
size and about the same number of trainable parameters as the default quantum generator
(70: 4 noise inputs + f(E) -> 4 tanh units -> 8 pixel logits + u gives 69), so a comparison
of the two measures the generator, not the set-up around it.
"""

from __future__ import annotations

import torch
from torch import nn

from qcalo.quantum.reduced import ReducedGanPlugin


class TwinGenerator(nn.Module):
    """latent [noise, f(E)] -> [softmax(pixel logits) * pixels, u]: the quantum generator's output."""

    def __init__(self, inputs: int, pixels: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(inputs, width), nn.Tanh()]
            inputs = width
        self.net = nn.Sequential(*layers, nn.Linear(inputs, pixels + 1))
        self.pixels = pixels

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        y = self.net(latent)
        return torch.cat([torch.softmax(y[:, :-1], dim=1) * self.pixels, y[:, -1:]], dim=1)


class MLPTwinPlugin(ReducedGanPlugin):
    name = "mlp"
    defaults = {
        **ReducedGanPlugin.defaults,
        "twin_noise": 4,  # latent Gaussian noise per shower (the default quantum generator: 4 qubits)
        "twin_hidden": [4],  # hidden tanh layers: [4] has 69 parameters, the quantum default 70
    }

    def build(self) -> tuple[nn.Module, nn.Module]:
        g = TwinGenerator(self.noise_size + 1, self.pixels, list(self.config["twin_hidden"]))
        return g, self.reduced_discriminator()

    @property
    def noise_size(self) -> int:
        return int(self.config["twin_noise"])
