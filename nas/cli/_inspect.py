"""``nas spaces``, ``space show``, ``candidate describe``, ``devices``, ``latency``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

import nas
from nas.cli._app import app, candidate_app, out, space_app, user_errors
from nas.errors import NasError
from nas.latency import device_names, load_device
from nas.space import format_number


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
    out.print(f"{s.name} ({s.family}): {s.description}", style="bold")
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



@candidate_app.command("describe")
@user_errors
def candidate_describe(
    key: str = typer.Argument(..., help="Candidate key, or a reference name such as mobilenet_v2_1.0_224."),
    num_classes: int = typer.Option(1000, "--classes", min=1, help="Classifier outputs."),
) -> None:
    """Blocks, operators, MACs, parameters and bytes of one candidate."""
    cand = nas.parse_candidate(key)
    space = cand.search_space
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


@app.command("devices")
@user_errors
def devices_cmd(
    profiles: Path = typer.Option(Path("profiles"), "--profiles",
                                  help="Folder of your own profiles (nas profile import/fit write to profiles/)."),
) -> None:
    """List the device profiles and where their numbers come from: the built-in ones, then
    yours (each by the path that --device takes)."""
    table = Table(title="device profiles")
    for col in ("name", "provenance", "runtime", "threads", "bits (native; fallback)", "table", "validation"):
        table.add_column(col)
    entries: list[str] = list(device_names())
    if profiles.is_dir():
        entries += [str(p) for p in sorted(profiles.glob("*.yaml"))]
    for name in entries:
        try:
            p = load_device(name)
        except NasError as exc:  # one unreadable file of yours does not hide the others
            table.add_row(name, "unreadable", "", "", "", "", str(exc))
            continue
        fb = ", ".join(f"{k}->{v}" for k, v in sorted(p.bit_fallback.items()))
        table.add_row(name, p.provenance_summary, p.runtime, str(p.threads),
                      f"{','.join(map(str, p.native_bits))}; {fb}", str(len(p.table)),
                      p.validation_text())
    out.print(table)
    if not profiles.is_dir():
        out.print(f"(no folder {profiles}/: your own profiles are listed from profiles/, where nas profile import "
                  f"and fit write them, or from --profiles DIR)", markup=False)


@app.command("latency")
@user_errors
def latency_cmd(
    key: Optional[str] = typer.Argument(None, help="Candidate key."),
    device: str = typer.Option(..., "--device", "-d", help="Profile name or path to a profile YAML."),
    reference: Optional[str] = typer.Option(None, "--reference", help="A reference network by name."),
    num_classes: int = typer.Option(1000, "--classes", min=1),
) -> None:
    """Predicted latency of one network on a device, with the per-op breakdown."""
    if (key is None) == (reference is None):
        raise NasError("give a candidate KEY or --reference NAME (one of them)")
    cand = nas.parse_candidate(key or reference)
    prof = load_device(device)
    rows = prof.breakdown(cand, num_classes=num_classes)
    table = Table(title=f"{cand.key}")
    for col in ("#", "op", "bits (exec)", "ms", "source"):
        table.add_column(col, justify="right" if col in ("#", "ms") else "left")
    for i, r in enumerate(rows):
        src = "estimated" if r.source == "estimate" else "table"
        table.add_row(str(i), r.op.key, f"{r.op.bits} ({r.exec_bits})", f"{r.ms:.3f}", src)
    out.print(table)
    total = prof.latency_ms(cand, num_classes=num_classes)
    n_est = sum(r.source == "estimate" for r in rows)
    qual = "ESTIMATED " if prof.is_estimated else ""
    out.print(f"provenance of this price: {prof.provenance_for(cand, num_classes=num_classes)}", markup=False)
    out.print(f"device: {prof.label}; priced with {num_classes} classifier outputs (--classes; a search "
              f"prices with its dataset's class count)")
    out.print(f"{qual}predicted latency: {total:.3f} ms  (sum of ops {sum(r.ms for r in rows):.3f} ms, "
              f"calibration {prof.calibration_for(cand).source}; {n_est} of {len(rows)} ops "
              f"from the estimator)")
