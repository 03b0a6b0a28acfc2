"""The ``nas`` application: its typer apps, consoles and the error boundary (library errors
become one line on stderr and exit code 2). Commands live in the sibling modules."""

from __future__ import annotations

import functools
import sys
from typing import Callable, Optional

import typer
from rich.console import Console

import nas
from nas.errors import NasError

# plain click help (rich's shows "<bool>" beside every flag); errors are ours (run())
_KW = dict(no_args_is_help=True, rich_markup_mode=None)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="hwnas: hardware-aware neural architecture search.", **_KW)
space_app = typer.Typer(help="Inspect one search space.", **_KW)
candidate_app = typer.Typer(help="Inspect one candidate network.", **_KW)
profile_app = typer.Typer(help="Build and validate device profiles.", **_KW)
app.add_typer(space_app, name="space")
app.add_typer(candidate_app, name="candidate")
app.add_typer(profile_app, name="profile")

# No markup or emoji codes are read from printed text: keys (":x:" is an emoji code to rich),
# paths and names are user data and print as they are.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False,
              width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False,
              width=None if sys.stderr.isatty() else 160)


def ms(x: float) -> str:
    """Milliseconds with enough digits to be true: 3.57, 0.0001 (never "0.00")."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"

def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


USER_ERROR = 2


def user_errors(fn: Callable) -> Callable:
    """Turn library errors into one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as exc:  # SearchInterrupted says how to resume
            err.print(str(exc) or "interrupted", markup=False)
            raise typer.Exit(130) from None
        except NasError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(USER_ERROR) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"hwnas {nas.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                                is_eager=True, help="Print the version.")) -> None:
    """hwnas: hardware-aware neural architecture search."""



def progress_printer(label: str, unit: str, every_s: float | None = None):
    """A transient rich progress bar fed by (..., done, total) calls, counting ``unit``. Where
    stderr is not a terminal (a log file, CI) a bar draws nothing: a plain line says when the
    step starts and when it ends instead, so a long step is never silent; with ``every_s``
    also a line with the count and the time left at most every ``every_s`` seconds."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    if not err.is_terminal:
        return _plain_progress(label, unit, every_s)

    bar = Progress(TextColumn(label, markup=False), BarColumn(bar_width=24),
                   TextColumn(f"{{task.completed}}/{{task.total}} {unit}", markup=False),
                   TimeRemainingColumn(), console=err, transient=True)
    task = None

    def update(*args):
        nonlocal task
        done, total = args[-2], args[-1]
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()
    return update


def _plain_progress(label: str, unit: str, every_s: float | None = None):
    import time

    started: list[float] = []
    last = [0.0, 0]  # when the last line was printed, and at what count

    def update(*args):
        done, total = args[-2], args[-1]
        now = time.perf_counter()
        if not started:
            started.append(now)
            last[:] = [now, done]
            err.print(f"{label}: {done}/{total} {unit} ...", markup=False, highlight=False)
        elif every_s is not None and done < total and now - last[0] >= every_s and done > last[1]:
            rate = (now - started[0]) / done if done else 0.0
            left = rate * (total - done)
            err.print(f"{label}: {done}/{total} {unit}, about {_duration(left)} left", markup=False,
                      highlight=False)
            last[:] = [now, done]
        if done >= total and len(started) == 1:
            started.append(time.perf_counter())
            err.print(f"{label}: {total}/{total} {unit} in {started[1] - started[0]:.0f} s", markup=False,
                      highlight=False)
    return update
