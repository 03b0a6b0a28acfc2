"""Derived files of a run, computed from its study: trials.csv, pareto.json, report.html
(plotly, fully offline), pareto.png (matplotlib).

In two steps, as Optuna's plots: ``report_data`` computes a ``ReportData`` from the study, and
renderers turn it into files. ``regenerate(run_dir)`` rebuilds every derived file.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any, NamedTuple

from nas._paths import atomic_write
from nas.config import RunMeta, SearchConfig, read_run_config
from nas.errors import ReportError, SearchError
from nas.front import hypervolume_2d, pareto_front
from nas.trials import TrialRow, open_study, read_trials

__all__ = ["ReportData", "report_data", "write_tables", "write_report", "load_run", "regenerate",
           "TrialRow", "pareto_front", "hypervolume_2d"]


class ReportData(NamedTuple):
    run: str
    space: str
    device_label: str
    provenance: str
    budget_ms: float
    budget_source: str
    objectives: tuple[str, ...]
    dataset: str
    trials: list[TrialRow]
    front: list[TrialRow]
    references: list[dict]
    hypervolume: list[tuple[int, float]]  # (trial number, normalised HV of the front so far)


def report_data(study, meta: RunMeta, config: SearchConfig) -> ReportData:
    rows = read_trials(study)
    budget = float(meta.latency_budget_ms)
    objectives = tuple(config.objectives)
    front = pareto_front(rows, budget, size="size" in objectives)
    hv, pts = [], []
    for r in sorted(rows, key=lambda r: r.number):
        if r.trained and r.latency_ms is not None:
            pts.append((r.accuracy, r.latency_ms))
        if r.status != "running":
            hv.append((r.number, hypervolume_2d(pts, budget)))
    return ReportData(
        run=meta.study_name, space=config.space, device_label=meta.device_label,
        provenance=meta.device_provenance, budget_ms=budget, budget_source=meta.latency_budget_source,
        objectives=objectives, dataset=meta.dataset, trials=rows, front=front,
        references=list(study.user_attrs.get("references", [])), hypervolume=hv)


# ----------------------------------------------------------------------------- renderers

CSV_FIELDS = list(TrialRow._fields)


def trials_csv(data: ReportData) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for r in data.trials:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


def pareto_json(data: ReportData) -> str:
    return json.dumps([{"number": r.number, "key": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms,
                        "bytes": r.bytes, "macs": r.macs, "params": r.params, "bits": r.bits, "keep": r.keep}
                       for r in data.front], indent=1)


def _hover(r: TrialRow) -> str:
    acc = "not trained" if r.accuracy is None else f"{r.accuracy:.4f}"
    parts = [f"trial {r.number} ({r.status})", f"accuracy {acc}", f"latency {r.latency_ms:.3f} ms",
             f"MACs {r.macs / 1e6:.1f}M" if r.macs else "", f"params {r.params / 1e6:.3f}M" if r.params else "",
             f"bits {r.bits}", f"keep {r.keep}", f"<span style='font-size:9px'>{html.escape(r.key)}</span>"]
    return "<br>".join(p for p in parts if p)


def title(data: ReportData) -> str:
    return (f"{data.run}: {data.space} on {data.device_label}, latency budget {data.budget_ms:.2f} ms "
            f"(device numbers {data.provenance})")


def render_html(data: ReportData) -> str:
    """One self-contained page: plotly is inlined, nothing is fetched."""
    try:
        import plotly.graph_objects as go
    except ImportError:  # pragma: no cover
        raise ReportError("plotly is not installed: pip install plotly") from None
    trained = [r for r in data.trials if r.trained and r.latency_ms is not None]
    over = [r for r in data.trials if r.status == "over_budget" and r.latency_ms is not None]
    front = data.front
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in trained], y=[r.accuracy for r in trained], mode="markers",
                             name=f"trained trials ({len(trained)})", marker=dict(color="#9aa5b1", size=7),
                             hovertext=[_hover(r) for r in trained], hoverinfo="text"))
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in over], y=[0.0] * len(over), mode="markers",
                             name=f"over budget, not trained ({len(over)})",
                             marker=dict(color="#e4a11b", symbol="x", size=6),
                             hovertext=[_hover(r) for r in over], hoverinfo="text"))
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in front], y=[r.accuracy for r in front],
                             mode="lines+markers", line=dict(shape="hv", color="#d62728"),
                             marker=dict(size=10), name=f"Pareto front ({len(front)})",
                             hovertext=[_hover(r) for r in front], hoverinfo="text"))
    refs = [r for r in data.references if r.get("accuracy") is not None]
    if refs:
        fig.add_trace(go.Scatter(x=[r["latency_ms"] for r in refs], y=[r["accuracy"] for r in refs],
                                 mode="markers+text", text=[r["name"] for r in refs], textposition="top center",
                                 marker=dict(symbol="diamond", size=11, color="#1f77b4"),
                                 name="reference networks (same proxy)",
                                 hovertext=[f"{r['name']}<br>accuracy {r['accuracy']:.4f}<br>latency "
                                            f"{r['latency_ms']:.3f} ms" for r in refs], hoverinfo="text"))
    fig.add_vline(x=data.budget_ms, line_dash="dash", line_color="#555",
                  annotation_text=f"budget {data.budget_ms:.2f} ms")
    fig.update_layout(title=dict(text=html.escape(title(data)), font=dict(size=14)),
                      xaxis_title=f"predicted latency on {data.device_label} [ms]",
                      yaxis_title="proxy accuracy (validation)", template="plotly_white", height=560)
    hv = go.Figure(go.Scatter(x=[n for n, _ in data.hypervolume], y=[v for _, v in data.hypervolume],
                              mode="lines", line=dict(shape="hv")))
    hv.update_layout(title="Hypervolume of the front (accuracy x budget-normalised latency, ref. point (0, budget))",
                     xaxis_title="trial", yaxis_title="hypervolume", template="plotly_white", height=320)
    failed = [r for r in data.trials if r.status == "failed"]
    rows = "".join(f"<tr><td>{r.number}</td><td><code>{html.escape(r.key)}</code></td>"
                   f"<td>{html.escape(r.reason)}</td></tr>" for r in failed)
    counts = {s: sum(1 for r in data.trials if r.status == s)
              for s in ("evaluated", "duplicate", "over_budget", "failed", "interrupted", "running")}
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
    body = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(data.run)}: hwnas report</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:1200px}td,th{padding:2px 8px;"
        "text-align:left;vertical-align:top}code{font-size:11px}</style></head><body>",
        f"<h2>{html.escape(title(data))}</h2>",
        f"<p>Latency: predicted from the <b>{html.escape(data.device_label)}</b> profile; these numbers "
        f"are <b>{html.escape(data.provenance)}</b>. Budget: {html.escape(data.budget_source)}. "
        f"Accuracy: short proxy on {html.escape(data.dataset)}.</p>",
        f"<p id='summary'>Trials: {html.escape(summary)}.</p>",
        fig.to_html(full_html=False, include_plotlyjs=True, div_id="front"),
        hv.to_html(full_html=False, include_plotlyjs=False, div_id="hypervolume"),
    ]
    if failed:
        body.append(f"<h3>Failed trials ({len(failed)})</h3><table id='failed'><tr><th>trial</th>"
                    f"<th>candidate</th><th>reason</th></tr>{rows}</table>")
    body.append("</body></html>")
    return "\n".join(body)


def render_png(data: ReportData) -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise ReportError("matplotlib is not installed: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    trained = [r for r in data.trials if r.trained and r.latency_ms is not None]
    ax.scatter([r.latency_ms for r in trained], [r.accuracy for r in trained], s=14, c="#9aa5b1",
               label=f"trained trials ({len(trained)})")
    if data.front:
        ax.step([r.latency_ms for r in data.front], [r.accuracy for r in data.front], where="post",
                color="#d62728", marker="o", label=f"Pareto front ({len(data.front)})")
    for r in data.references:
        if r.get("accuracy") is not None:
            ax.scatter([r["latency_ms"]], [r["accuracy"]], marker="D", c="#1f77b4", s=40)
            ax.annotate(r["name"], (r["latency_ms"], r["accuracy"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axvline(data.budget_ms, ls="--", c="#555", lw=1, label=f"budget {data.budget_ms:.2f} ms")
    ax.set_xlabel(f"predicted latency on {data.device_label} [ms] ({data.provenance})", fontsize=8)
    ax.set_ylabel("proxy accuracy (validation)")
    ax.set_title(f"{data.run}: {data.space}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------- files

def write_tables(run_dir: Path, study, config: SearchConfig, meta: RunMeta) -> dict[str, Path]:
    """trials.csv and pareto.json (cheap: refreshed after trials finish)."""
    data = report_data(study, meta, config)
    run_dir = Path(run_dir)
    atomic_write(run_dir / "trials.csv", trials_csv(data))
    atomic_write(run_dir / "pareto.json", pareto_json(data))
    return {"trials.csv": run_dir / "trials.csv", "pareto.json": run_dir / "pareto.json"}


def write_report(run_dir: Path, study, config: SearchConfig, meta: RunMeta) -> dict[str, Path]:
    """Every derived file, each written atomically."""
    run_dir = Path(run_dir)
    data = report_data(study, meta, config)
    files = {}
    for name, text in (("trials.csv", trials_csv(data)), ("pareto.json", pareto_json(data)),
                       ("report.html", render_html(data))):
        atomic_write(run_dir / name, text)
        files[name] = run_dir / name
    atomic_write(run_dir / "pareto.png", render_png(data))
    files["pareto.png"] = run_dir / "pareto.png"
    return files


def load_run(run_dir: str | Path) -> tuple[Any, RunMeta, SearchConfig]:
    """(study, derived facts, configuration) of a run folder, read-only."""
    run_dir = Path(run_dir)
    try:
        config, meta = read_run_config(run_dir)
    except SearchError as exc:
        raise ReportError(str(exc)) from None
    try:
        study = open_study(meta.study_name, meta.storage)
    except ReportError as exc:
        raise ReportError(f"{run_dir}: {exc}") from None
    return study, meta, config


def regenerate(run_dir: str | Path) -> dict[str, Path]:
    """``nas report RUN``: rebuild trials.csv, pareto.json, report.html and pareto.png."""
    study, meta, config = load_run(run_dir)
    return write_report(Path(run_dir), study, config, meta)
