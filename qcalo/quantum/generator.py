"""The hybrid generator: variational circuits (PennyLane, torch interface) and their read-out.

One `QuantumGenerator` holds `sub_generators` circuits of one layout. Its input is a latent
batch [noise angles, f(E)] and its output the model space of `QuantumPlugin`: the shower's
pixel fractions (times the pixel count, so they average 1) and u, the standardised log of the
total deposited energy, from the energy qubit. Every parameter is an ordinary torch parameter,
so optimisers, DDP and checkpoints treat it like a classical network.
"""

from __future__ import annotations

import torch
from torch import nn

from qcalo.quantum.ansatz import CircuitLayout, circuit, read_out
from qcalo.quantum.devices import QuantumDevice


class QuantumGenerator(nn.Module):
    def __init__(
        self,
        lay: CircuitLayout,
        qdev: QuantumDevice,
        sub_generators: int = 1,
        layers: int = 4,
        entangler: str = "ring",
        reupload: bool = True,
        init_scale: float = 0.1,
        noise_floor: float = 0.0,
    ):
        super().__init__()
        self.lay, self.qdev, self.subs, self.layers, self.reupload = (
            lay,
            qdev,
            sub_generators,
            layers,
            reupload,
        )
        n = lay.n_wires
        g = torch.Generator().manual_seed(0)  # the loop's seed sets torch's global RNG; this is
        # only a fixed, small start near the identity circuit
        self.weights = nn.Parameter(init_scale * torch.randn(sub_generators, layers, n, 2, generator=g))
        enc_layers = layers if reupload else 1
        self.enc_w = nn.Parameter(torch.ones(sub_generators, enc_layers, n))
        self.enc_b = nn.Parameter(torch.zeros(sub_generators, enc_layers, n))
        self.noise_scale = nn.Parameter(torch.ones(sub_generators, n))
        # |scale| >= noise_floor: a scale of 0 is a trap (the gradient of any average over
        # symmetric noise w.r.t. its scale vanishes there), seen to switch off the energy
        # qubit's noise so that the total energy's spread came from the encoding's wiggles
        self.noise_floor = noise_floor
        self.energy_head = nn.Parameter(torch.tensor([1.5, 0.0]))  # u = a asin(<Z_e>) + c
        self._qnode = qdev.qnode(
            lambda z, e, w: circuit(lay, z, e, w, entangler, projectors=qdev.needs_projectors)
        )

    @property
    def n_noise(self) -> int:
        return self.subs * self.lay.n_wires

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, n_noise + 1): noise angles and f(E) in [-1, 1] -> (B, pixels + 1)."""
        b, n = latent.shape[0], self.lay.n_wires
        noise = latent[:, :-1].reshape(b, self.subs, n)
        f = latent[:, -1]
        pixels, energy_z = [], []
        for k in range(self.subs):
            enc = self.enc_w[k] * f[:, None, None] + self.enc_b[k]  # (B, enc_layers, n)
            if not self.reupload:
                enc = torch.cat([enc, enc.new_zeros(b, self.layers - 1, n)], dim=1)
            scale = (
                self.noise_scale[k].abs().clamp_min(self.noise_floor)
                if self.noise_floor
                else self.noise_scale[k]
            )
            out = self._qnode(noise[:, k] * scale, enc, self.weights[k])
            out = torch.stack(list(out), dim=-1) if isinstance(out, list | tuple) else out
            out = out.reshape(b, -1).to(latent.dtype)
            p, z = read_out(self.lay, out)
            pixels.append(p)
            energy_z.append(z)
        raw = torch.cat(pixels, dim=1)
        fractions = raw / raw.sum(dim=1, keepdim=True).clamp_min(1e-12)
        z = torch.stack(energy_z).mean(dim=0)
        # a qubit rotated by a Gaussian noise angle phi gives <Z> ~ sin(phi): asin gives phi back,
        # so Gaussian noise can make a Gaussian total energy
        z = torch.asin(z * (1 - 1e-4))
        u = self.energy_head[0] * z + self.energy_head[1]
        return torch.cat([fractions * raw.shape[1], u[:, None]], dim=1)
