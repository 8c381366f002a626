"""Conv2D-only generator and discriminator, after Rehm et al., arXiv 2105.08960.

A 25^3 shower is seen three ways, each axis in turn as the channels of a 2-D image. The generator
has one 2-D path per axis (5 x 5 start, transposed convolutions to 25 x 25 with 25 channels);
the three volumes are permuted back to (x, y, z), stacked with depth as channels and fused by a
final 2-D convolution. About 2.08 M parameters; 25^3 output only (the 5 -> 10 -> 25 path is
specific to it). The discriminator sees depth as channels and has the 3DGAN's three outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from classical.conv3d import BN, SLOPE

N = 25


class _Path(nn.Module):
    """latent -> (N, 25, 25, 25) with the path's axis as channels."""

    def __init__(self, latent_size: int, width: int = 96):
        super().__init__()
        self.width = width
        self.dense = nn.Linear(latent_size, width * 5 * 5)
        self.body = nn.Sequential(
            nn.LeakyReLU(SLOPE),
            nn.ConvTranspose2d(width, 64, 4, stride=2, padding=1),  # 10 x 10
            nn.BatchNorm2d(64, **BN),
            nn.LeakyReLU(SLOPE),
            nn.ConvTranspose2d(64, 32, 7, stride=2),  # 25 x 25
            nn.BatchNorm2d(32, **BN),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(32, N, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.dense(z).view(-1, self.width, 5, 5))


class Generator2D(nn.Module):
    def __init__(self, latent_size: int = 200):
        super().__init__()
        self.latent_size = latent_size
        self.paths = nn.ModuleList(_Path(latent_size) for _ in range(3))
        self.fuse = nn.Sequential(nn.LeakyReLU(SLOPE), nn.Conv2d(3 * N, N, 3, padding=1), nn.ReLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        vx, vy, vz = (path(z) for path in self.paths)
        # Each volume to (N, z, x, y): depth as channels. vx is (x, y, z), vy (y, x, z), vz (z, x, y).
        stacked = torch.cat([vx.permute(0, 3, 1, 2), vy.permute(0, 3, 2, 1), vz], dim=1)
        return self.fuse(stacked).permute(0, 2, 3, 1)  # back to (N, x, y, z)


class Discriminator2D(nn.Module):
    """(N, x, y, z) seen with depth as channels -> (probability, auxiliary energy, ECAL sum)."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(N, 64, 5, padding=2),
            nn.LeakyReLU(SLOPE),
            nn.Dropout(dropout),
            nn.Conv2d(64, 32, 5, padding=2),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm2d(32, track_running_stats=False, **BN),
            nn.Dropout(dropout),
            nn.Conv2d(32, 16, 5, padding=2),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm2d(16, track_running_stats=False, **BN),
            nn.Dropout(dropout),
            nn.AvgPool2d(2),
        )
        n_flat = 16 * 12 * 12
        self.fake = nn.Linear(n_flat, 1)
        self.aux = nn.Linear(n_flat, 1)

    def forward(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(cells.permute(0, 3, 1, 2)).flatten(1)
        return torch.sigmoid(self.fake(h)).squeeze(1), self.aux(h).squeeze(1), cells.sum(dim=(1, 2, 3))
