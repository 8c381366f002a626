import pytest

from qcalo.data.geometry import Geometry, ecal_3dgan, parse_geometry
from qcalo.errors import ConfigError


def test_3dgan_geometry_names_depth_axis():
    g = ecal_3dgan()
    assert g.shape == (25, 25, 25) and g.axes == ("x", "y", "z")
    assert g.depth_axis == 2 and g.n_layers == 25 and g.transverse_axes == (0, 1)
    assert g.n_cells == 15625


@pytest.mark.parametrize(
    "spec, shape, depth",
    [
        ("calochallenge-2", (45, 16, 9), 0),
        ("45x16x9", (45, 16, 9), 0),
        ("3dgan", (25, 25, 25), 2),
        ({"shape": [10, 4], "depth_axis": 0}, (10, 4), 0),
    ],
)
def test_parse_geometry(spec, shape, depth):
    g = parse_geometry(spec)
    assert g.shape == shape and g.depth_axis == depth


def test_json_round_trip():
    g = ecal_3dgan(12, 20)
    back = Geometry.from_json(g.to_json())
    assert back == g and back.cell_sizes == g.cell_sizes and back.name == g.name


@pytest.mark.parametrize("spec", ["banana", "45x16xq", {"axes": ["a"]}])
def test_bad_geometry_specs(spec):
    with pytest.raises(ConfigError):
        parse_geometry(spec)


def test_axis_lookup():
    g = ecal_3dgan()
    assert g.axis("z") == 2 and g.axis(1) == 1
    with pytest.raises(ConfigError, match="no axis named 'w'"):
        g.axis("w")
