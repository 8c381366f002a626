"""CERN's 3DGAN (Conv3D), ported from the Keras original (svalleco/3Dgan, keras/EcalEnergyGan.py).

Tensors are (N, C, x, y, z), z along the beam; the output is 25 x 25 x 25 (the padding and
upsampling arithmetic of this architecture is specific to it). Port details that matter, each a
known pitfall of earlier ports: LeakyReLU slope 0.3 (Keras default), BatchNorm momentum 0.01 and
eps 1e-3 (Keras 0.99 / 1e-3), nearest-neighbour upsampling, Keras 'same' padding for even
kernels (one more cell after than before), he_uniform / glorot initialisers, and discriminator
BatchNorm always on batch statistics (Keras `training=True`).
"""

from __future__ import annotations

import torch
from torch import nn

SLOPE = 0.3
BN = {"momentum": 0.01, "eps": 1e-3}


# Both networks keep their weights channels-last, where oneDNN's Conv3d runs faster on CPU
# (docs/history/classical_quality.md).
MEMORY_FORMAT = torch.channels_last_3d


def same_pad3d(kernel: tuple[int, int, int]) -> nn.Module:
    """Keras/TensorFlow 'same' padding: total k - 1, the extra cell after (torch pads z first)."""
    pads: list[int] = []
    for k in reversed(kernel):
        before = (k - 1) // 2
        pads += [before, k - 1 - before]
    return nn.ConstantPad3d(tuple(pads), 0.0)


def pad3d(px: int, py: int, pz: int) -> nn.Module:
    """Keras ZeroPadding3D((px, py, pz))."""
    return nn.ConstantPad3d((pz, pz, py, py, px, px), 0.0)


class Generator3D(nn.Module):
    """latent (200: z E/100, or [E/100, z]) -> Dense -> 7x7x8x8 -> Conv3D stack -> ReLU -> (N, 25, 25, 25)."""

    def __init__(self, latent_size: int = 200):
        super().__init__()
        self.latent_size = latent_size
        self.dense = nn.Linear(latent_size, 8 * 7 * 7 * 8)
        self.body = nn.Sequential(
            same_pad3d((6, 6, 8)),
            nn.Conv3d(8, 64, (6, 6, 8)),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm3d(64, **BN),
            nn.Upsample(scale_factor=(2, 2, 2), mode="nearest"),  # 14 x 14 x 16
            pad3d(2, 2, 0),
            nn.Conv3d(64, 6, (6, 5, 8)),  # 13 x 14 x 9
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm3d(6, **BN),
            nn.Upsample(scale_factor=(2, 2, 3), mode="nearest"),  # 26 x 28 x 27
            pad3d(1, 0, 3),
            nn.Conv3d(6, 6, (3, 3, 8)),  # 26 x 26 x 26
            nn.LeakyReLU(SLOPE),
            nn.Conv3d(6, 1, (2, 2, 2), bias=False),  # 25 x 25 x 25
            nn.ReLU(),
        )
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)
        convs = [m for m in self.body if isinstance(m, nn.Conv3d)]
        for conv in convs[:-1]:
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # Keras he_uniform
            nn.init.zeros_(conv.bias)
        nn.init.xavier_normal_(convs[-1].weight)  # Keras glorot_normal
        self.to(memory_format=MEMORY_FORMAT)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(-1, 8, 7, 7, 8)
        return self.body(x).squeeze(1)


class Discriminator3D(nn.Module):
    """(N, 25, 25, 25) -> (real/fake probability, auxiliary energy, ECAL sum of the input)."""

    def __init__(self, shape: tuple[int, int, int] = (25, 25, 25), dropout: float = 0.2):
        super().__init__()

        def block(in_channels: int, pad: int) -> list[nn.Module]:
            return [
                pad3d(pad, pad, pad),
                nn.Conv3d(in_channels, 8, 5),
                nn.LeakyReLU(SLOPE),
                nn.BatchNorm3d(8, track_running_stats=False, **BN),
                nn.Dropout(dropout),
            ]

        layers: list[nn.Module] = [
            same_pad3d((5, 5, 5)),
            nn.Conv3d(1, 32, 5),
            nn.LeakyReLU(SLOPE),
            nn.Dropout(dropout),
            *block(32, 2),
            *block(8, 2),
            *block(8, 1),
            nn.AvgPool3d(2),
        ]
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(2, 1, *shape)).flatten(1).shape[1]
        self.fake = nn.Linear(n_flat, 1)
        self.aux = nn.Linear(n_flat, 1)
        self.to(memory_format=MEMORY_FORMAT)

    def forward(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(cells.unsqueeze(1)).flatten(1)
        return torch.sigmoid(self.fake(h)).squeeze(1), self.aux(h).squeeze(1), cells.sum(dim=(1, 2, 3))
