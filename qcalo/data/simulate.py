"""Built-in Monte Carlo of electromagnetic showers in a CLIC-like W/Si sampling ECAL.

The real Geant4 data sets cannot be downloaded everywhere, so qcalo ships a fast parametric
simulation in the spirit of GFlash (Grindhammer & Peters, hep-ex/0001020):

* longitudinal: a Gamma-function profile in radiation lengths whose shape (alpha) and maximum (T)
  fluctuate from event to event as correlated log-normals, so leakage and depth fluctuate;
* sampling: each Si layer sees a Gamma-distributed share of the energy the profile puts in front
  of it, with variance set by the stochastic term, independent from layer to layer (as sampling
  fluctuations are);
* lateral: a core + tail radial profile (in Molière radii) whose widths grow with depth;
* energy is deposited as discrete spots with Gamma-distributed weights, so cell occupancy and the
  spectrum of single-cell energies come out right; spots outside the detector are lost.

Its free parameters were tuned to a full Geant4 simulation of this geometry (see
tests/test_simulate_physics.py for the figures and tolerances). Everything is vectorised numpy;
the same seed gives the same showers, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import gammainc

from qcalo import cli
from qcalo.data.geometry import Geometry, ecal_3dgan
from qcalo.data.writer import ShowerWriter
from qcalo.errors import ConfigError


@dataclass(frozen=True)
class ShowerModel:
    """Detector and shower parameters; defaults are the 3DGAN W/Si ECAL for electrons."""

    n_cells: int = 25  # transverse cells per axis
    n_layers: int = 25
    cell_mm: float = 5.1
    x0_per_layer: float = 0.805  # 2.8 mm W (X0 = 3.5 mm) + 0.5 mm Si
    moliere_mm: float = 10.6  # effective R_M of the W/Si mixture
    sampling_fraction: float = 0.0254  # Si / (W + Si), flat in energy
    # Longitudinal Gamma profile, t in X0: T = ln(E/Ec) + t_offset, alpha = a0 + a1 ln(E/Ec).
    critical_energy_gev: float = 0.008
    t_offset: float = -0.858
    alpha0: float = 0.21
    alpha1: float = 0.524
    sampler_shift: float = 0.5  # the Si of layer l samples t in [(l+s) d, (l+1+s) d]
    # Event-by-event fluctuations (GFlash form): sigma = 1 / (c0 + c1 ln y), correlation rho.
    sigma_ln_t: tuple[float, float] = (-1.4, 1.26)
    sigma_ln_alpha: tuple[float, float] = (-0.58, 0.86)
    rho: tuple[float, float] = (0.705, -0.023)
    stochastic_gev: float = 0.17  # sampling term, sigma/E = s / sqrt(E)
    # Lateral (GFlash homogeneous form for Z = 74, radii in R_M), scaled by radial_scale.
    radial_scale: float = 1.0
    core_z1: tuple[float, float] = (0.0251, 0.00319)
    core_z2: float = 0.0880
    tail_k1: float = 0.430
    tail_k2: float = 0.645
    tail_k3: float = -2.59
    tail_k4: tuple[float, float] = (0.3585, 0.0421)
    core_p: tuple[float, float, tuple[float, float]] = (2.562, 0.539, (1.313, -0.0686))
    # Spots: Poisson(k * E^gamma) per shower and component, spread over layers by energy;
    # tail spots (soft photons far out) are many and carry little, which sets the occupancy.
    core_spots_k: float = 15.0
    core_spots_gamma: float = 0.5
    tail_spots_k: float = 105.0
    tail_spots_gamma: float = 0.95
    spot_shape: float = 1.0
    min_hit_gev: float = 1e-5  # a layer share below this (10 keV in Si) leaves no hit

    def geometry(self) -> Geometry:
        return ecal_3dgan(self.n_cells, self.n_layers)


def simulate(
    energies: np.ndarray,
    seed: int | np.random.Generator = 0,
    model: ShowerModel | None = None,
    chunk: int = 128,
) -> np.ndarray:
    """Showers (N, n_cells, n_cells, n_layers) of Si cell energies in GeV for primaries in GeV."""
    model = model or ShowerModel()
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    if energies.size and (not np.all(np.isfinite(energies)) or energies.min() <= 0):
        raise ValueError("simulate: primary energies must be finite and > 0 GeV")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.empty((energies.size, model.n_cells, model.n_cells, model.n_layers), np.float32)
    for start in range(0, energies.size, chunk):
        out[start : start + chunk] = _simulate_batch(energies[start : start + chunk], rng, model)
    return out


def _simulate_batch(energy: np.ndarray, rng: np.random.Generator, m: ShowerModel) -> np.ndarray:
    b, nl, nc = energy.size, m.n_layers, m.n_cells
    ln_y = np.log(energy / m.critical_energy_gev)

    # Longitudinal shape per event: correlated log-normal fluctuations of T and alpha.
    t_mean = np.maximum(ln_y + m.t_offset, 0.5)
    a_mean = np.maximum(m.alpha0 + m.alpha1 * ln_y, 1.2)
    s_t = 1.0 / (m.sigma_ln_t[0] + m.sigma_ln_t[1] * ln_y)
    s_a = 1.0 / (m.sigma_ln_alpha[0] + m.sigma_ln_alpha[1] * ln_y)
    rho = np.clip(m.rho[0] + m.rho[1] * ln_y, -0.99, 0.99)
    g1, g2 = rng.standard_normal((2, b))
    t_max = t_mean * np.exp(s_t * g1)
    alpha = np.maximum(a_mean * np.exp(s_a * (rho * g1 + np.sqrt(1 - rho**2) * g2)), 1.05)
    beta = (alpha - 1.0) / t_max

    # Fraction of the shower that each Si layer samples, then sampling fluctuations per layer.
    edges = (np.arange(nl + 1) + m.sampler_shift) * m.x0_per_layer
    edges[0] = 0.0
    cdf = gammainc(alpha[:, None], beta[:, None] * edges[None, :])
    frac = np.diff(cdf, axis=1)  # (b, nl); what lies behind the last layer leaks out
    mean_layer = energy[:, None] * frac
    q = m.stochastic_gev**2
    e_layer = m.sampling_fraction * q * rng.standard_gamma(mean_layer / q)

    # Lateral shape at each layer's depth (in units of T): core and tail radii, core share.
    tau = ((np.arange(nl) + 1.0) * m.x0_per_layer)[None, :] / t_max[:, None]  # (b, nl)
    ln_e = np.log(energy)[:, None]
    r_core = m.core_z1[0] + m.core_z1[1] * ln_e + m.core_z2 * tau
    k4 = m.tail_k4[0] + m.tail_k4[1] * ln_e
    r_tail = m.tail_k1 * (np.exp(m.tail_k3 * (tau - m.tail_k2)) + np.exp(k4 * (tau - m.tail_k2)))
    p1, p2, (p3a, p3b) = m.core_p
    p3 = p3a + p3b * ln_e
    p_core = np.clip(p1 * np.exp((p2 - tau) / p3 - np.exp((p2 - tau) / p3)), 0.0, 1.0)

    # Spots: groups are (event, layer, core|tail); each group shares its energy among its spots.
    share = np.stack([p_core, 1.0 - p_core], axis=-1)  # (b, nl, 2)
    e_group = (e_layer[..., None] * share).reshape(-1)
    n_spots = np.stack(
        [m.core_spots_k * energy**m.core_spots_gamma, m.tail_spots_k * energy**m.tail_spots_gamma], axis=-1
    )  # (b, 2)
    counts = rng.poisson(n_spots[:, None, :] * frac[..., None] * share)  # (b, nl, 2)
    # Energy is conserved within a layer: a tail without spots gives its share to the core, and
    # a layer with a signal above the smallest Si hit has at least one core spot.
    e_group = e_group.reshape(b, nl, 2)
    lonely = counts[..., 1] == 0
    e_group[..., 0] += np.where(lonely, e_group[..., 1], 0.0)
    e_group[..., 1] = np.where(lonely, 0.0, e_group[..., 1])
    e_group[..., 0] = np.where(e_group[..., 0] < m.min_hit_gev, 0.0, e_group[..., 0])
    counts[..., 0] = np.where(e_group[..., 0] > 0, np.maximum(counts[..., 0], 1), 0)
    counts, e_group = counts.reshape(-1), e_group.reshape(-1)
    group = np.repeat(np.arange(counts.size), counts)
    w = rng.standard_gamma(m.spot_shape, size=group.size)
    wsum = np.bincount(group, w, minlength=counts.size)
    scale = np.divide(e_group, wsum, out=np.zeros_like(e_group), where=wsum > 0)
    e_spot = w * scale[group]

    # Radius from f(r) = 2 r R^2 / (r^2 + R^2)^2: a 2-D Student t with 2 degrees of freedom and
    # scale R / sqrt(2), drawn as normal / sqrt(exponential) (no trigonometry, which is slow).
    radius_cells = m.radial_scale * m.moliere_mm / m.cell_mm / math.sqrt(2.0)
    r_group = radius_cells * np.stack([r_core, r_tail], axis=-1).reshape(-1)
    spread = (r_group[group] / np.sqrt(rng.standard_exponential(group.size))).astype(np.float32)
    xy = rng.standard_normal((2, group.size), dtype=np.float32) * spread
    xy += np.float32(nc / 2.0)  # the electron enters at the middle of the central cell
    np.floor(xy, out=xy)
    inside = np.all((xy >= 0) & (xy < nc), axis=0)

    # Cell index: (event, x, y, layer) in C order; each group knows its event and layer.
    g = np.arange(counts.size) // 2
    base = (g // nl) * (nc * nc * nl) + g % nl
    ixy = xy.astype(np.int64)
    flat = base[group] + (ixy[0] * nc + ixy[1]) * nl
    cells = np.bincount(flat[inside], e_spot[inside], minlength=b * nc * nc * nl)
    return cells.reshape(b, nc, nc, nl).astype(np.float32)


def simulate_file(
    path: str | Path,
    energies: np.ndarray,
    seed: int,
    model: ShowerModel | None = None,
    progress: bool = True,
    chunk: int = 1024,
) -> Path:
    """Simulate showers for `energies` (GeV) into a 3DGAN-layout file, written atomically.

    Showers are drawn from one generator seeded with `seed`, in a fixed order, so the same seed
    and energies give the same file, bit for bit.
    """
    from tqdm import tqdm

    model = model or ShowerModel()
    rng = np.random.default_rng(seed)
    attrs = {
        "simulation": "qcalo GFlash-style parametric Monte Carlo",
        "simulation_parameters": json.dumps(asdict(model)),
    }
    with (
        ShowerWriter(path, model.geometry(), "qcalo.data.simulate", seed, attrs) as writer,
        tqdm(total=energies.size, unit="shower", disable=not progress, desc="simulate") as bar,
    ):
        for start in range(0, energies.size, chunk):
            e = energies[start : start + chunk]
            writer.append(simulate(e, rng, model), e)
            bar.update(e.size)
    return Path(path)


def sample_energies(
    n: int,
    rng: np.random.Generator,
    energy_range: tuple[float, float] | None = None,
    energies: Sequence[float] | None = None,
) -> np.ndarray:
    """Primary energies: n per fixed energy, or n drawn flat in [lo, hi] GeV."""
    if energies:
        return np.repeat(np.asarray(energies, dtype=np.float64), n)
    lo, hi = energy_range or (2.0, 500.0)
    return rng.uniform(lo, hi, size=n)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m qcalo.data.simulate",
        description="Simulate electron showers in the 3DGAN W/Si ECAL with qcalo's built-in "
        "parametric Monte Carlo and write them in the 3DGAN layout (ECAL, energy).",
    )
    p.add_argument("--n", type=int, required=True, help="number of showers (with --energies: per energy)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--energy-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="flat primary-energy spectrum in GeV (default 2 500)",
    )
    g.add_argument("--energies", type=float, nargs="+", metavar="E", help="fixed energies in GeV")
    p.add_argument("--seed", type=int, default=0, help="same seed, same file (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    p.add_argument("--cells", type=int, default=25, help="transverse cells per axis (default 25)")
    p.add_argument("--layers", type=int, default=25, help="number of layers (default 25)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.n <= 0:
        raise ConfigError(f"--n must be positive, got {args.n}")
    lo, hi = args.energy_range or (2.0, 500.0)
    if args.energies is None and not 0 < lo < hi:
        raise ConfigError(f"--energy-range needs 0 < LO < HI GeV, got {lo} {hi}")
    if args.energies is not None and min(args.energies) <= 0:
        raise ConfigError("--energies must all be > 0 GeV")
    if args.cells <= 0 or args.layers <= 0:
        raise ConfigError("--cells and --layers must be positive")
    model = ShowerModel(n_cells=args.cells, n_layers=args.layers)
    energies = sample_energies(args.n, np.random.default_rng([args.seed, 1]), (lo, hi), args.energies)
    path = simulate_file(args.out, energies, args.seed, model, progress=not args.quiet)
    print(f"wrote {energies.size} showers ({model.geometry().describe()}) to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
