"""The 3DGAN losses: BCE on real/fake + lambda_E MAPE(energy) + lambda_S MAPE(ECAL sum), and an
optional profile term (not the 3DGAN's, see `profile_distance`).

MAPE follows Keras, `mean_absolute_percentage_error(y_true, y_pred)` = 100 mean(|t - p| / |t|):
the *target* is in the denominator (swapping the arguments, a known porting error, divides by the
network's own output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qcalo.data.views import sum_except


def mape(target: torch.Tensor, prediction: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    return 100.0 * torch.mean(torch.abs(target - prediction) / torch.clamp(torch.abs(target), min=eps))


def real_fake_labels(
    n: int, real: bool, flip_prob: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Targets for the real/fake head: 1 for real, 0 for fake, each flipped with probability
    `flip_prob` (the 3DGAN's BitFlip, which keeps the discriminator from winning)."""
    labels = torch.full((n,), 1.0 if real else 0.0, device=device)
    flip = torch.rand(n, generator=gen, device="cpu").to(device) < flip_prob
    return torch.where(flip, 1.0 - labels, labels)


def gan3d_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    labels: torch.Tensor,
    energy_target: torch.Tensor,
    ecal_target: torch.Tensor,
    weights: tuple[float, float, float],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the three terms, and each term for the logs."""
    prob, aux, ecal = outputs
    terms = (
        F.binary_cross_entropy(prob.clamp(1e-7, 1 - 1e-7), labels),
        mape(energy_target, aux),
        mape(ecal_target, ecal),
    )
    total = sum(w * t for w, t in zip(weights, terms, strict=True))
    return total, {"bce": terms[0].item(), "aux_mape": terms[1].item(), "ecal_mape": terms[2].item()}


def profile_distance(fake: torch.Tensor, real: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """How much of the energy a batch of generated showers puts elsewhere than the real batch, in %.

    Each shower's energy fractions along every axis (its profile in x, y and depth, summed over the
    other two) are averaged over the batch; the result is the total variation distance between the
    generated and the real mean profiles (50 x sum |difference|, 0 to 100 %), averaged over the axes.
    Feature matching (Salimans et al. 2016) on the observables the 3DGAN's losses leave free: a
    diffuse halo or energy in the first layer moves it by the share of energy put there, with a
    gradient, where the bin-count terms of the 3DGAN's angle versions (hard thresholds) have none.
    Only the batch means are compared, so it asks for no shower-by-shower match; the two batches
    must be drawn at the same energies (the training loop gives the generator the real batch's).
    """
    distances = []
    for axis in range(fake.dim() - 1):
        profiles = []
        for showers in (fake, real):
            p = sum_except(showers, axis)
            profiles.append((p / p.sum(dim=1, keepdim=True).clamp(min=eps)).mean(dim=0))
        distances.append(50.0 * torch.abs(profiles[0] - profiles[1]).sum())
    return torch.stack(distances).mean()
