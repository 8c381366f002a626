"""The classical models: faithful to the 3DGAN port rules, the right sizes, the right losses."""

import numpy as np
import pytest
import torch
from torch import nn

from classical.conv2d import Discriminator2D, Generator2D
from classical.conv3d import Discriminator3D, Generator3D, same_pad3d
from classical.losses import gan3d_loss, mape, profile_distance, real_fake_labels
from qcalo.errors import ConfigError
from qcalo.fits import fit_sampling_fraction, polyval_log
from qcalo.plugins import get_plugin


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_conv3d_generator_matches_the_keras_original():
    g = Generator3D()
    assert n_params(g) == 872_808  # the Keras model's count
    out = g(torch.randn(4, 200))
    assert out.shape == (4, 25, 25, 25) and (out >= 0).all()
    slopes = {m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.3}
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns and all(m.momentum == 0.01 and m.eps == 1e-3 for m in bns)
    ups = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert [m.mode for m in ups] == ["nearest", "nearest"]
    assert [tuple(m.scale_factor) for m in ups] == [(2.0, 2.0, 2.0), (2.0, 2.0, 3.0)]


def test_conv3d_networks_are_channels_last_and_compute_the_same():
    """Channels-last is a speed choice only: the same weights in the default layout give the same
    showers and scores, and weights saved in that layout (older checkpoints) load."""
    torch.manual_seed(0)
    for net, x in ((Generator3D(), torch.randn(3, 200)), (Discriminator3D(), torch.rand(3, 25, 25, 25))):
        plain = type(net)()
        plain.load_state_dict({k: v.contiguous() for k, v in net.state_dict().items()})
        for m in (net, plain):
            convs = [c.weight for c in m.modules() if isinstance(c, nn.Conv3d)]
            assert convs and all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in convs)
        plain.to(memory_format=torch.contiguous_format)
        net.eval()
        plain.eval()
        with torch.no_grad():
            ours, theirs = net(x), plain(x)
        # the discriminator answers (probability, energy, ECAL sum), the generator one tensor
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_keras_same_padding_puts_the_extra_cell_after():
    # torch order is (z_before, z_after, y_before, y_after, x_before, x_after)
    assert same_pad3d((6, 6, 8)).padding == (3, 4, 2, 3, 2, 3)
    assert same_pad3d((5, 5, 5)).padding == (2, 2, 2, 2, 2, 2)


def test_discriminators_have_three_outputs_and_batch_statistics():
    for d, in_shape in ((Discriminator3D(), (3, 25, 25, 25)), (Discriminator2D(), (3, 25, 25, 25))):
        x = torch.rand(in_shape)
        prob, aux, ecal = d(x)
        assert prob.shape == aux.shape == ecal.shape == (3,)
        assert ((prob > 0) & (prob < 1)).all()
        torch.testing.assert_close(ecal, x.sum(dim=(1, 2, 3)))
        bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm3d | nn.BatchNorm2d)]
        assert bns and not any(m.track_running_stats for m in bns)  # Keras training=True
        drops = [m.p for m in d.modules() if isinstance(m, nn.Dropout)]
        assert drops and set(drops) == {0.2}


def test_conv2d_sizes():
    g = Generator2D()
    assert 2.0e6 < n_params(g) < 2.15e6
    assert g(torch.randn(2, 200)).shape == (2, 25, 25, 25)


def test_conv2d_paths_map_to_their_axes():
    g = Generator2D().eval()
    z = torch.randn(1, 200)
    with torch.no_grad():
        vx, vy, vz = (path(z) for path in g.paths)
    # vz has channels = z: the permutation in forward must put channel k at depth k
    stacked = torch.cat([vx.permute(0, 3, 1, 2), vy.permute(0, 3, 2, 1), vz], dim=1)
    assert torch.equal(stacked[0, 50 + 7], vz[0, 7])
    assert torch.equal(stacked[0, 3, 4, 5], vx[0, 4, 5, 3])  # x=4, y=5, z=3
    assert torch.equal(stacked[0, 25 + 3, 4, 5], vy[0, 5, 4, 3])


def test_mape_divides_by_the_target():
    assert mape(torch.tensor([100.0]), torch.tensor([50.0])).item() == pytest.approx(50.0)
    assert mape(torch.tensor([50.0]), torch.tensor([100.0])).item() == pytest.approx(100.0)


def test_label_flips():
    gen = torch.Generator().manual_seed(0)
    real = real_fake_labels(20000, True, 0.05, gen, torch.device("cpu"))
    assert sorted(real.unique().tolist()) == [0.0, 1.0]
    assert (real < 0.5).float().mean().item() == pytest.approx(0.05, abs=0.01)
    fake = real_fake_labels(1000, False, 0.0, gen, torch.device("cpu"))
    assert (fake == 0).all()


def test_loss_weights():
    outputs = (torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))
    total, parts = gan3d_loss(
        outputs, torch.ones(2), torch.tensor([2.0, 2.0]), torch.tensor([4.0, 4.0]), (2.0, 0.1, 0.1)
    )
    assert parts["aux_mape"] == pytest.approx(50) and parts["ecal_mape"] == pytest.approx(50)
    assert total.item() == pytest.approx(2 * np.log(2) + 0.1 * 50 + 0.1 * 50, rel=1e-5)


def test_sampling_fraction_fit():
    rng = np.random.default_rng(0)
    e = rng.uniform(2, 500, 5000)
    true = 0.0255 - 0.0003 * np.log(e)
    coeffs = fit_sampling_fraction(e, true * e * rng.normal(1, 0.02, e.size))
    got = polyval_log(coeffs, torch.tensor([5.0, 50.0, 400.0], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, 0.0255 - 0.0003 * np.log([5, 50, 400]), rtol=0.01)


def test_registry():
    assert get_plugin("conv3d").name == "conv3d" and get_plugin("conv2d").name == "conv2d"
    with pytest.raises(ConfigError, match="unknown generator 'conv4d'"):
        get_plugin("conv4d")


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_cell_power_round_trip_and_the_ecal_sum_stays_linear(power):
    from qcalo.config import load_config
    from qcalo.data.geometry import ecal_3dgan

    cfg = load_config("conv2d", sets=[f"cell_power={power}"])
    plugin = get_plugin("conv2d")(cfg, ecal_3dgan(), {"sampling_fraction": [0.0, 0.0, 0.025]})
    cells = torch.rand(3, 25, 25, 25) * 1e-2
    cells[cells < 2e-3] = 0.0
    energy = torch.tensor([10.0, 50.0, 100.0])
    x = plugin.to_model(cells, energy)
    assert torch.allclose(x, (cells * 100) ** power) and torch.allclose(plugin.showers(x, energy), cells)
    _, _, ecal = plugin._outputs(Discriminator2D(), x, energy)
    torch.testing.assert_close(ecal, cells.sum(dim=(1, 2, 3)) * 100)  # the energy, whatever the power
    with pytest.raises(ConfigError, match="cell_power 1.5"):
        get_plugin("conv2d")({**cfg, "cell_power": 1.5}, ecal_3dgan(), {})


def test_energy_input_concat_keeps_a_low_energy_input_alive():
    """product: z E/100 (the 3DGAN); concat: [E/100, z] (its angle versions, Conv3D's default),
    one noise fewer."""
    from qcalo.config import load_config
    from qcalo.data.geometry import ecal_3dgan

    calib = {"sampling_fraction": [0.025]}
    product = get_plugin("conv3d")(load_config("conv3d", sets=["energy_input=product"]), ecal_3dgan(), calib)
    concat = get_plugin("conv3d")(load_config("conv3d", sets=["energy_input=concat"]), ecal_3dgan(), calib)
    assert (product.noise_size, concat.noise_size) == (200, 199)
    energy = torch.tensor([2.0, 500.0])
    z = torch.randn(2, 200, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(product.condition(z, energy), z * torch.tensor([[0.02], [5.0]]))
    c = concat.condition(z[:, :199], energy)
    assert c.shape == (2, 200) and torch.equal(c[:, 0], energy / 100) and torch.equal(c[:, 1:], z[:, :199])
    with pytest.raises(ConfigError, match="energy_input 'sum': expected one of product, concat"):
        get_plugin("conv3d")({**load_config("conv3d"), "energy_input": "sum"}, ecal_3dgan(), calib)


def test_output_scale_energy_works_per_unit_of_primary_energy():
    """Untrained, the 3DGAN's generator deposits about the same at 3 and 300 GeV (it must learn
    the 100x); with `output_scale: energy` the deposit / E is already the same at both (within
    20 %, fixed seeds), both networks see showers / E, and a 100 GeV shower is the same in both
    model spaces, the ECAL sum (GeV x xscale) too."""
    from qcalo.config import load_config
    from qcalo.data.geometry import ecal_3dgan

    calib = {"sampling_fraction": [0.025]}
    plugins = {
        s: get_plugin("conv3d")(load_config("conv3d", sets=[f"output_scale={s}"]), ecal_3dgan(), calib)
        for s in ("none", "energy")
    }

    def deposit_per_gev(plugin):
        torch.manual_seed(0)
        g, _ = plugin.build()
        gen = torch.Generator().manual_seed(1)
        return [
            (plugin.generate(g.eval(), torch.full((16,), e), gen).sum(dim=(1, 2, 3)) / e).mean().item()
            for e in (3.0, 300.0)
        ]

    low, high = deposit_per_gev(plugins["energy"])
    assert abs(low / high - 1) < 0.2
    low, high = deposit_per_gev(plugins["none"])
    assert low / high > 10
    cells = torch.rand(2, 25, 25, 25) * 1e-2
    energy = torch.tensor([100.0, 10.0])
    x = {s: p.to_model(cells, energy) for s, p in plugins.items()}
    torch.testing.assert_close(x["energy"][0], x["none"][0])
    torch.testing.assert_close(x["energy"][1], x["none"][1] * 10**0.5)  # cell_power 0.5
    torch.testing.assert_close(plugins["energy"].showers(x["energy"], energy), cells)
    _, _, ecal = plugins["energy"]._outputs(Discriminator3D(), x["energy"], energy)
    torch.testing.assert_close(ecal, cells.sum(dim=(1, 2, 3)) * 100)


def test_aux_on_fakes_false_trains_the_energy_regression_on_real_showers_only():
    """With `aux_on_fakes: false` a fake batch's discriminator loss gives the energy head no
    gradient (the generator cannot teach it its own energy code); real batches and the 3DGAN's
    default still train it, and a value other than true / false is refused."""
    from qcalo.config import load_config
    from qcalo.data.geometry import ecal_3dgan

    calib = {"sampling_fraction": [0.025]}

    def aux_grad(aux_on_fakes: bool, real: bool) -> float:
        cfg = load_config("conv3d", sets=[f"aux_on_fakes={str(aux_on_fakes).lower()}", "flip_prob=0"])
        plugin = get_plugin("conv3d")(cfg, ecal_3dgan(), calib)
        torch.manual_seed(0)
        disc = Discriminator3D()
        x = plugin.to_model(torch.rand(4, 25, 25, 25) * 1e-2, torch.full((4,), 50.0))
        loss, _ = plugin.d_loss(disc, x, torch.full((4,), 50.0), real, torch.Generator().manual_seed(0))
        loss.backward()
        return disc.aux.weight.grad.abs().sum().item()

    assert aux_grad(False, real=False) == 0.0
    assert aux_grad(False, real=True) > 0.0
    assert aux_grad(True, real=False) > 0.0
    with pytest.raises(ConfigError, match="aux_on_fakes"):
        get_plugin("conv3d")(load_config("conv3d", sets=["aux_on_fakes=maybe"]), ecal_3dgan(), calib)


def test_profile_distance_is_the_share_of_energy_put_elsewhere():
    """Identical batches are 0 apart; a uniform halo holding a share f of every shower's energy
    moves each axis' mean profile by f (u - p), so the distance is f times the TV distance between
    the showers' profile and the uniform one, in %."""
    torch.manual_seed(0)
    real = torch.zeros(8, 25, 25, 25)
    real[:, 10:15, 10:15, 3:12] = torch.rand(8, 5, 5, 9)
    assert profile_distance(real, real).item() == 0.0
    f = 0.3
    halo = (1 - f) * real / real.sum(dim=(1, 2, 3), keepdim=True) + f / 25**3
    expected = []
    for axis in (1, 2, 3):
        others = tuple(d for d in (1, 2, 3) if d != axis)
        p = (real.sum(dim=others) / real.sum(dim=(1, 2, 3))[:, None]).mean(dim=0)
        expected.append(50 * f * (p - 1 / 25).abs().sum())
    assert profile_distance(halo, real).item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-4)
    assert profile_distance(halo * 7.0, real).item() == pytest.approx(profile_distance(halo, real).item())


def test_profile_weight_adds_the_profile_term_to_the_generator_loss_only():
    """`profile_weight: 0` (the 3DGAN) leaves the generator's loss as it was; w > 0 adds exactly
    w x profile_distance of the generated and the real batch (in GeV) and trains the generator on it."""
    from qcalo.config import load_config
    from qcalo.data.geometry import ecal_3dgan

    calib = {"sampling_fraction": [0.025]}
    energy = torch.tensor([10.0, 50.0, 100.0, 300.0])
    real_cells = torch.zeros(4, 25, 25, 25)
    real_cells[:, 11:14, 11:14, 2:15] = 0.01

    def loss(weight: float):
        cfg = load_config("conv3d", sets=[f"profile_weight={weight}", "output_scale=energy"])
        plugin = get_plugin("conv3d")(cfg, ecal_3dgan(), calib)
        torch.manual_seed(0)
        g, d = Generator3D(), Discriminator3D().eval()
        fake = g(plugin.latent(energy, torch.Generator().manual_seed(1)))
        real = (plugin.to_model(real_cells, energy), energy)
        total, parts = plugin.g_loss(d, fake, energy, torch.Generator(), real=real)
        distance = profile_distance(plugin.showers(fake, energy), real_cells)
        return total, parts, distance, g

    base, parts0, distance, g0 = loss(0.0)
    assert "profile_tv" not in parts0
    with_term, parts, _, g = loss(0.5)
    assert parts["profile_tv"] == pytest.approx(distance.item())
    assert with_term.item() == pytest.approx(base.item() + 0.5 * distance.item(), rel=1e-5)
    base.backward()
    with_term.backward()
    last = [m for m in g.body if isinstance(m, nn.Conv3d)][-1]
    last0 = [m for m in g0.body if isinstance(m, nn.Conv3d)][-1]
    assert not torch.allclose(last.weight.grad, last0.weight.grad)
