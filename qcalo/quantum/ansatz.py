"""Variational circuits of the quantum generator: the gates, and how pixels are read out.

Two ansätze share one structure (noise -> layers of [energy encoding, trainable rotations,
entangler] -> measurement) and differ in what a pixel is:

- "angle" (the CERN quantum angle generator): one qubit per pixel; a pixel's raw value is the
  qubit's probability of |1>, (1 - <Z>) / 2.
- "born" (a Born machine, with Huang et al.'s patch sub-generators): 2^q pixels from the
  probabilities of q qubits' basis states. With ancillas, a pixel is the joint probability of
  its basis state and ancillas in |0>, so the relative weight of the patches is learnt too.

Every circuit also holds one energy qubit whose <Z> sets the total deposited energy of the
shower, so shape and total come from the same quantum state (and fluctuate together).
Latent noise enters as RY angles, the primary energy as RX angles w * f(E) + b (once, or
re-uploaded in every layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pennylane as qml
import torch

from qcalo.errors import ConfigError, check_choice

ANSATZE = ("angle", "born")
ENTANGLERS = ("ring", "linear", "all", "none")


@dataclass(frozen=True)
class CircuitLayout:
    """Wires and read-out of one sub-generator circuit."""

    ansatz: str
    pixels: int  # pixels this circuit produces
    ancillas: int = 0

    @property
    def pixel_qubits(self) -> int:
        return self.pixels if self.ansatz == "angle" else int(math.log2(self.pixels))

    @property
    def n_wires(self) -> int:
        return self.pixel_qubits + self.ancillas + 1  # + the energy qubit

    @property
    def energy_wire(self) -> int:
        return self.n_wires - 1

    @property
    def n_outputs(self) -> int:
        """Numbers the QNode returns: <Z> per wire (angle) or every basis-state probability (born)."""
        return self.n_wires if self.ansatz == "angle" else 2**self.n_wires


def layout(ansatz: str, pixels: int, sub_generators: int = 1, ancillas: int = 0) -> CircuitLayout:
    """The layout of each of `sub_generators` circuits that together make `pixels` pixels."""
    check_choice("ansatz", ansatz, ANSATZE)
    if sub_generators < 1 or pixels % sub_generators:
        raise ConfigError(f"sub_generators={sub_generators} must divide the {pixels} pixels")
    per = pixels // sub_generators
    if ansatz == "born" and per & (per - 1):
        raise ConfigError(
            f"ansatz 'born': each sub-generator makes 2^q pixels; {pixels} pixels / "
            f"{sub_generators} sub-generators = {per} is not a power of 2"
        )
    if ansatz == "angle" and ancillas:
        raise ConfigError("ansatz 'angle' has no ancillas (set ancillas=0)")
    return CircuitLayout(ansatz, per, ancillas)


def entangle(kind: str, wires: int) -> None:
    check_choice("entangler", kind, ENTANGLERS)
    if kind == "none" or wires < 2:
        return
    if kind == "ring":
        pairs = [(i, (i + 1) % wires) for i in range(wires)] if wires > 2 else [(0, 1)]
    elif kind == "linear":
        pairs = [(i, i + 1) for i in range(wires - 1)]
    else:  # "all"
        pairs = [(i, j) for i in range(wires) for j in range(i + 1, wires)]
    for a, b in pairs:
        qml.CNOT(wires=[a, b])


def circuit(
    lay: CircuitLayout,
    noise: torch.Tensor,
    energy_angles: torch.Tensor,
    weights: torch.Tensor,
    entangler: str,
    projectors: bool = False,
):
    """The gates and measurements of one sub-generator (call inside a QNode).

    noise: (..., n_wires) angles; energy_angles: (..., layers, n_wires) (the encoding of every
    layer; without re-uploading only layer 0 is used by the caller's choice of zeros);
    weights: (layers, n_wires, 2) RY, RZ angles. `projectors` measures basis-state
    probabilities as expectation values of projectors (adjoint differentiation needs that).
    """
    n = lay.n_wires
    for i in range(n):
        qml.RY(noise[..., i], wires=i)
    for layer in range(weights.shape[0]):
        for i in range(n):
            qml.RX(energy_angles[..., layer, i], wires=i)
            qml.RY(weights[layer, i, 0], wires=i)
            qml.RZ(weights[layer, i, 1], wires=i)
        entangle(entangler, n)
    if lay.ansatz == "angle":
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]
    if projectors:
        states = [[(k >> (n - 1 - i)) & 1 for i in range(n)] for k in range(2**n)]
        return [qml.expval(qml.Projector(s, wires=range(n))) for s in states]
    return qml.probs(wires=range(n))


def read_out(lay: CircuitLayout, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw pixel values (B, pixels) >= 0, energy qubit <Z> (B,)) from a QNode's outputs (B, n_outputs)."""
    if lay.ansatz == "angle":
        z = out
        return ((1 - z[:, : lay.pixels]) / 2).clamp_min(0), z[:, lay.energy_wire]
    # wire order: pixel qubits, ancillas, energy qubit (big-endian basis-state index)
    p = out.clamp_min(0).reshape(-1, lay.pixels, 2**lay.ancillas, 2)  # (sampled) rounding
    energy_z = p[..., 0].sum(dim=(1, 2)) - p[..., 1].sum(dim=(1, 2))
    pixels = p[:, :, 0, :].sum(dim=-1)  # ancillas in |0>, energy qubit traced out
    return pixels[:, gray_code(lay.pixels)], energy_z


def gray_code(n: int) -> list[int]:
    """Basis state of each pixel: k -> k XOR (k >> 1), so neighbouring pixels differ in one qubit.

    In plain binary order pixels 3 and 4 (|011>, |100>) differ in every qubit, and a shallow
    circuit measured here kept a step in the profile there (+36 % in pixel 4 at 10 GeV).
    """
    return [k ^ (k >> 1) for k in range(n)]
