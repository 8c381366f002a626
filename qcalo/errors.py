"""qcalo's exceptions: one type per kind of user mistake, each naming what was expected."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path


class QcaloError(Exception):
    """Base class for errors a user can fix; command-line tools print them as one line, exit 2."""


class DataError(QcaloError, ValueError):
    """A shower file that cannot be used as it is.

    The message always names the file, the dataset inside it (when one is concerned) and what was
    expected, because the user's next step is to open exactly that file and look at that field.
    """

    def __init__(self, path: str | Path | None, problem: str, dataset: str | None = None):
        self.path = None if path is None else str(path)
        self.dataset = dataset
        self.problem = problem
        where = [] if self.path is None else [self.path]
        if dataset is not None:
            where.append(f"dataset '{dataset}'")
        super().__init__(": ".join([*where, problem]))


class ConfigError(QcaloError, ValueError):
    """An option, preset name or transform spec that qcalo does not understand."""


def check_choice(key: str, value: object, choices: Collection[str]) -> None:
    """A ConfigError naming the key, its value and the values it takes, unless `value` is one."""
    if value not in choices:
        raise ConfigError(f"{key} '{value}': expected one of {', '.join(choices)}")
