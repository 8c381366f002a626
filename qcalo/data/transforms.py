"""Invertible preprocessing, configured by name, applied alike to numpy arrays and torch tensors.

A transform acts on one target, the cell energies ('cells') or the primary energy ('energy').
Specs come from configs either as strings, 'energy.scale=100' (E/100), 'cells.power=0.85'
(x^0.85), 'cells.threshold=1e-6' (cells below 1e-6 GeV set to zero), or as mappings
{'on': 'cells', 'name': 'power', 'value': 0.85}. A pipeline runs them in order and inverts them in
reverse order, so generated samples go back to GeV with the same object that prepared the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcalo.errors import ConfigError

TARGETS = ("cells", "energy")


def _where(cond: Any, a: Any, b: Any) -> Any:
    if isinstance(cond, np.ndarray):
        return np.where(cond, a, b)
    import torch

    return torch.where(cond, a, b)


@dataclass(frozen=True)
class Transform:
    """One named, parameterised map; `inverse(forward(x)) == x` except where noted (threshold)."""

    on: str
    name: str
    value: float

    def forward(self, x: Any) -> Any:
        if self.name == "scale":
            return x / self.value
        if self.name == "power":
            return _where(x > 0, abs(x) ** self.value, 0 * x)
        return _where(x < self.value, 0 * x, x)  # threshold

    def inverse(self, x: Any) -> Any:
        if self.name == "scale":
            return x * self.value
        if self.name == "power":
            return _where(x > 0, abs(x) ** (1.0 / self.value), 0 * x)
        # Cells below the threshold are gone for good; generated values below it are noise.
        return _where(x < self.value, 0 * x, x)

    def spec(self) -> str:
        return f"{self.on}.{self.name}={self.value:g}"


NAMES = ("scale", "power", "threshold")


def parse_transform(spec: str | Mapping[str, Any]) -> Transform:
    """A Transform from 'target.name=value' or a mapping with keys on, name, value."""
    if isinstance(spec, Mapping):
        on, name, value = spec.get("on"), spec.get("name"), spec.get("value")
    else:
        text = str(spec).strip()
        try:
            head, value = text.split("=", 1)
            on, name = head.split(".", 1)
        except ValueError:
            raise ConfigError(
                f"transform '{spec}': expected 'target.name=value', e.g. 'cells.power=0.85'"
            ) from None
    if on not in TARGETS:
        raise ConfigError(f"transform '{spec}': target must be one of {TARGETS}, got '{on}'")
    if name not in NAMES:
        raise ConfigError(f"transform '{spec}': name must be one of {NAMES}, got '{name}'")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"transform '{spec}': value must be a number, got '{value}'") from None
    if name in ("scale", "power") and not value > 0:
        raise ConfigError(f"transform '{spec}': {name} needs a value > 0")
    return Transform(on, name, value)


class Pipeline:
    """Transforms in order; `inverse` undoes them in reverse order."""

    def __init__(self, specs: Iterable[str | Mapping[str, Any] | Transform] = ()):
        self.steps = tuple(s if isinstance(s, Transform) else parse_transform(s) for s in specs)

    def forward(self, cells: Any, energy: Any) -> tuple[Any, Any]:
        for t in self.steps:
            if t.on == "cells":
                cells = t.forward(cells)
            else:
                energy = t.forward(energy)
        return cells, energy

    def inverse(self, cells: Any, energy: Any) -> tuple[Any, Any]:
        for t in reversed(self.steps):
            if t.on == "cells":
                cells = t.inverse(cells)
            else:
                energy = t.inverse(energy)
        return cells, energy

    def specs(self) -> list[str]:
        return [t.spec() for t in self.steps]

    def __repr__(self) -> str:
        return f"Pipeline({self.specs()})"
