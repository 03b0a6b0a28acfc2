"""The ``nas`` command: a thin shell over the library, and the only place that prints.

Library errors (``nas.errors.NasError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from nas.cli import _inspect, _profile, _run  # noqa: F401  (register the commands)
from nas.cli._app import USER_ERROR, app, err
from nas.errors import NasError

__all__ = ["app", "run"]


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except NasError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}", markup=False)
        sys.exit(USER_ERROR)
