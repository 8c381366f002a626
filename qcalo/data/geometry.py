"""The geometry that travels with every shower array, so that metrics and models never guess.

A geometry says what the axes of one shower are: their sizes, their names, which one runs along
the beam (depth), and the cell sizes in mm where known. It is stored as HDF5 attributes by the
writer and read back by the loader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from qcalo.errors import ConfigError


@dataclass(frozen=True)
class Geometry:
    """Shape and meaning of the cell axes of one shower (the batch axis is not part of it)."""

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    depth_axis: int
    cell_sizes: tuple[float, ...] | None = None  # mm, one per axis, where known
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "axes", tuple(str(a) for a in self.axes))
        if self.cell_sizes is not None:
            object.__setattr__(self, "cell_sizes", tuple(float(c) for c in self.cell_sizes))
        if len(self.shape) != len(self.axes):
            raise ConfigError(f"geometry: {len(self.shape)} sizes but {len(self.axes)} axis names")
        if any(s <= 0 for s in self.shape):
            raise ConfigError(f"geometry: axis sizes must be positive, got {self.shape}")
        if not 0 <= self.depth_axis < len(self.shape):
            raise ConfigError(f"geometry: depth_axis {self.depth_axis} outside 0..{len(self.shape) - 1}")
        if self.cell_sizes is not None and len(self.cell_sizes) != len(self.shape):
            raise ConfigError("geometry: cell_sizes must give one size per axis")

    @property
    def n_cells(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def n_layers(self) -> int:
        return self.shape[self.depth_axis]

    @property
    def transverse_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.shape)) if i != self.depth_axis)

    def axis(self, name_or_index: str | int) -> int:
        """Index of an axis given by name ('z', 'layer') or by index."""
        if isinstance(name_or_index, int):
            if not 0 <= name_or_index < len(self.shape):
                raise ConfigError(f"geometry {self.describe()}: no axis {name_or_index}")
            return name_or_index
        if name_or_index not in self.axes:
            raise ConfigError(f"geometry {self.describe()}: no axis named '{name_or_index}'")
        return self.axes.index(name_or_index)

    def describe(self) -> str:
        dims = ", ".join(f"{a} {s}" for s, a in zip(self.shape, self.axes, strict=True))
        return f"{self.name} ({dims}; depth axis {self.axes[self.depth_axis]})"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Geometry:
        d = json.loads(text)
        return cls(
            shape=tuple(d["shape"]),
            axes=tuple(d["axes"]),
            depth_axis=int(d["depth_axis"]),
            cell_sizes=None if d.get("cell_sizes") is None else tuple(d["cell_sizes"]),
            name=d.get("name", "custom"),
        )


def ecal_3dgan(n_cells: int = 25, n_layers: int = 25) -> Geometry:
    """The CLIC-like W/Si ECAL of the CERN 3DGAN data: axes (x, y, z), z along the beam.

    Cells are 5.1 mm in x and y; a layer is 2.8 mm W + 0.5 mm Si (3.3 mm).
    """
    name = "3dgan" if (n_cells, n_layers) == (25, 25) else f"3dgan-{n_cells}x{n_cells}x{n_layers}"
    return Geometry(
        shape=(n_cells, n_cells, n_layers),
        axes=("x", "y", "z"),
        depth_axis=2,
        cell_sizes=(5.1, 5.1, 3.3),
        name=name,
    )


# CaloChallenge 2022 electron data sets: voxels ordered layer-major, then angle, then radius.
PRESETS: Mapping[str, Geometry] = {
    "3dgan": ecal_3dgan(),
    "calochallenge-2": Geometry((45, 16, 9), ("layer", "alpha", "r"), 0, name="calochallenge-2"),
    "calochallenge-3": Geometry((45, 50, 18), ("layer", "alpha", "r"), 0, name="calochallenge-3"),
}


def parse_geometry(spec: str | Geometry | Mapping) -> Geometry:
    """A geometry from a preset name ('calochallenge-2'), 'AxBxC' (depth first), or a mapping.

    'AxBxC' follows the CaloChallenge convention: the first axis is the layer (depth) axis, the
    others are named 'alpha' and 'r' for three axes, 'a1', 'a2', ... otherwise.
    """
    if isinstance(spec, Geometry):
        return spec
    if isinstance(spec, Mapping):
        try:
            return Geometry(
                shape=tuple(spec["shape"]),
                axes=tuple(spec.get("axes") or _default_axes(len(spec["shape"]))),
                depth_axis=int(spec.get("depth_axis", 0)),
                cell_sizes=spec.get("cell_sizes"),
                name=str(spec.get("name", "custom")),
            )
        except KeyError as exc:
            raise ConfigError(f"geometry mapping needs key {exc}") from None
    key = str(spec).strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    parts = key.replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"geometry '{spec}': expected a preset ({', '.join(PRESETS)}) or sizes like 45x16x9"
        ) from None
    return Geometry(shape, _default_axes(len(shape)), depth_axis=0, name=key)


def _default_axes(n: int) -> tuple[str, ...]:
    return ("layer", "alpha", "r") if n == 3 else ("layer", *(f"a{i}" for i in range(1, n)))
