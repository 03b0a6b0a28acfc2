"""The ``nas`` command: a thin shell over the library. The only module that prints.

Library errors (``nas.errors.NasError``) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

import nas
from nas.candidate import Candidate, format_number
from nas.errors import NasError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="hwnas: hardware-aware neural architecture search.")
space_app = typer.Typer(no_args_is_help=True, help="Inspect one search space.")
candidate_app = typer.Typer(no_args_is_help=True, help="Inspect one candidate network.")
app.add_typer(space_app, name="space")
app.add_typer(candidate_app, name="candidate")

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERROR = 2


def user_errors(fn: Callable) -> Callable:
    """Turn library errors into one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NasError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(USER_ERROR) from None
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"hwnas {nas.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                                is_eager=True, help="Print the version.")) -> None:
    """hwnas: hardware-aware neural architecture search."""


def _sci(n: int) -> str:
    return f"{n:.3e}" if n >= 1_000_000 else str(n)


@app.command("spaces")
@user_errors
def spaces_cmd() -> None:
    """List the search spaces."""
    table = Table(title="search spaces")
    for col in ("name", "family", "skeletons", "candidates", "resolutions", "references"):
        table.add_column(col)
    for name in nas.space_names():
        s = nas.load_space(name)
        table.add_row(name, s.family, ", ".join(s.skeletons), _sci(s.num_candidates()),
                      ", ".join(map(str, s.resolutions)), str(len(s.references())))
    out.print(table)


@space_app.command("show")
@user_errors
def space_show(name: str = typer.Argument(..., help="Space name or path to a space YAML.")) -> None:
    """Show the choices and reference networks of a space."""
    s = nas.load_space(name)
    out.print(f"[bold]{s.name}[/bold] ({s.family}): {s.description}")
    out.print(f"candidates: {_sci(s.num_candidates())}")
    out.print(f"widths: {', '.join(format_number(w) for w in s.widths)} ({s.width_mode})")
    for sk in s.skeletons.values():
        table = Table(title=f"skeleton {sk.name} (resolutions {', '.join(map(str, sk.resolutions))})")
        for col in ("stage", "channels", "stride", "depth", "ops", "keep", "bits", "se", "act"):
            table.add_column(col)
        for i, st in enumerate(sk.stages, start=1):
            ch = str(st.channels) if s.width_mode == "multiplier" else "table"
            table.add_row(str(i), ch, str(st.stride), ",".join(map(str, st.depth)), " ".join(st.ops),
                          ",".join(format_number(k) for k in st.keep), ",".join(map(str, st.bits)),
                          "yes" if st.se else "", st.act)
        out.print(table)
    refs = Table(title="references")
    refs.add_column("name")
    refs.add_column("key")
    for r in s.references():
        refs.add_row(r, s.reference(r).key)
    out.print(refs)


def resolve_candidate(text: str) -> Candidate:
    """A candidate key, or the name of a reference network of any space."""
    if ":" in text:
        return Candidate.parse(text)
    for name in nas.space_names():
        s = nas.load_space(name)
        if text in s.references():
            return s.reference(text)
    raise NasError(f"{text!r} is neither a candidate key nor a reference name "
                   f"(`nas space show SPACE` lists the references)")


@candidate_app.command("describe")
@user_errors
def candidate_describe(
    key: str = typer.Argument(..., help="Candidate key, or a reference name such as mobilenet_v2_1.0_224."),
    num_classes: int = typer.Option(1000, "--classes", min=1, help="Classifier outputs."),
) -> None:
    """Blocks, operators, MACs, parameters and bytes of one candidate."""
    cand = resolve_candidate(key)
    space = cand.space_obj()
    out.print(f"key: {cand.key}", markup=False)
    out.print(f"space: {cand.space} (skeleton {cand.skeleton}), resolution {cand.resolution}, "
              f"width {format_number(cand.width)}"
              + ("" if space.contains(cand) else "  [outside the searched domain]"), markup=False)
    table = Table()
    for col in ("#", "op", "input", "in→out", "hidden", "k", "s", "g", "se", "act", "bits", "MMACs"):
        table.add_column(col, justify="right" if col in ("#", "MMACs") else "left")
    for i, op in enumerate(cand.ops(num_classes=num_classes)):
        table.add_row(str(i), op.kind, f"{op.h}x{op.w}", f"{op.cin}→{op.cout}",
                      str(op.hidden or ""), str(op.kernel), str(op.stride),
                      str(op.groups if op.groups > 1 else ""), str(op.se or ""), op.act,
                      str(op.bits), f"{op.macs / 1e6:.2f}")
    out.print(table)
    c = nas.count(cand, num_classes=num_classes)
    out.print(f"MACs {c['macs'] / 1e6:.1f}M   params {c['params'] / 1e6:.3f}M   "
              f"bytes {c['bytes'] / 1e6:.3f}MB")


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except NasError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}", markup=False)
        sys.exit(USER_ERROR)
