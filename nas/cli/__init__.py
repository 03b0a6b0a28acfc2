"""The ``nas`` command: a thin shell over the library, and the only place that prints.

Library errors (``nas.errors.NasError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from nas.cli import _inspect, _profile, _run  # noqa: F401  (register the commands)
from nas.cli._app import USER_ERROR, app, err, out
from nas.errors import NasError

__all__ = ["app", "run"]


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point. Every error a user can make, a bad flag included, is one line
    on stderr starting with ``error:`` and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except NasError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}")
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.exceptions.TyperException as exc:  # click's usage errors (typer vendors click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `nas` or `nas profile`: the help
            out.print(exc.format_message())
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err.print(f"error: {' '.join(exc.format_message().split())}{hint}")
        sys.exit(exc.exit_code if exc.exit_code else USER_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
