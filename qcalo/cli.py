"""What every qcalo command line shares: user mistakes become one line on stderr and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from qcalo.errors import QcaloError


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call `main(argv)`; a QcaloError prints 'qcalo: error: ...' and returns 2."""
    try:
        return int(main(argv) or 0)
    except QcaloError as exc:
        print(f"qcalo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qcalo: interrupted", file=sys.stderr)
        return 130
