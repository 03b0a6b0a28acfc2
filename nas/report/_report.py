"""Derived files of a run, computed from its study: trials.csv, pareto.json, report.html
(plotly, fully offline), pareto.png (matplotlib).

In two steps, as Optuna's plots: ``report_data`` computes a ``ReportData`` from the study, and
renderers turn it into files. ``regenerate(run_dir)`` rebuilds every derived file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, NamedTuple

from nas._paths import atomic_write
from nas.errors import ReportError, SearchError, StudyDamagedError
from nas.report._html import marked_trial, render_html
from nas.run import RunMeta, SearchConfig, read_run_config
from nas.search import RunView, TrialRow, best_trial, hypervolume_2d, open_study, pareto_front, read_trials

__all__ = ["ReportData", "ReportWriter", "report_data", "write_tables", "write_report", "load_run", "regenerate"]


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
    run_dir: str = ""  # for the commands the page shows
    recommended: TrialRow | None = None  # the default pick (best) among trained trials
    winner: dict | None = None  # winner/card.json when the winner was exported
    fidelity: str = ""  # "" (single budget) or how successive halving's rungs were run


def _winner_card(run_dir: Path | None) -> dict | None:
    if run_dir is None:
        return None
    try:
        return json.loads((Path(run_dir) / "winner" / "card.json").read_text())
    except (OSError, ValueError):
        return None


def report_data(study, meta: RunMeta, config: SearchConfig, run_dir: Path | None = None) -> ReportData:
    rows = read_trials(study)
    budget = float(meta.latency_budget_ms)
    objectives = tuple(config.objectives)
    front = pareto_front(rows, budget, size="size" in objectives, memory="memory" in objectives)
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
        references=list(study.user_attrs.get("references", [])), hypervolume=hv,
        run_dir=str(run_dir or ""), recommended=_recommended(rows, budget), winner=_winner_card(run_dir),
        fidelity=_fidelity_text(config))


def _fidelity_text(config: SearchConfig) -> str:
    if config.fidelity != "halving":
        return ""
    ep = config.budget().epochs
    rungs = ", ".join(f"{ep * config.eta ** r:g}" for r in range(config.rungs))
    return (f"successive halving: {config.rungs} rungs of {rungs} epochs (eta {config.eta}), ranked by "
            f"{config.rank_by.replace('_', ' ')}; a trial's accuracy is the one at the highest rung it reached, "
            f"and the front is drawn from those, two trials compared at the highest rung both reached")


def _recommended(rows: list[TrialRow], budget_ms: float) -> TrialRow | None:
    return best_trial(rows, budget_ms)  # the winner's default pick; None before any trained trial


# ----------------------------------------------------------------------------- renderers

CSV_FIELDS = list(TrialRow._fields)


def trials_csv(data: ReportData) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for r in data.trials:
        w.writerow(["" if v is None else "/".join("failed" if a is None else f"{a:.4f}" for a in v)
                    if isinstance(v, tuple) else v for v in r])
    return buf.getvalue()


def pareto_json(data: ReportData) -> str:
    return json.dumps([{"number": r.number, "key": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms,
                        "bytes": r.bytes, "macs": r.macs, "params": r.params, "bits": r.bits, "keep": r.keep,
                        "rung": r.rung, "rung_accuracy": list(r.rung_accuracy)}
                       for r in data.front], indent=1)


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
    mark = marked_trial(data)
    if mark is not None:
        ax.scatter([mark[0].latency_ms], [mark[0].accuracy], marker="*", s=220, c="#ffbf00", edgecolors="k",
                   zorder=5, label=f"{mark[1]}: trial {mark[0].number}")
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
    run_dir = Path(run_dir)
    data = report_data(study, meta, config, run_dir)
    atomic_write(run_dir / "trials.csv", trials_csv(data))
    atomic_write(run_dir / "pareto.json", pareto_json(data))
    return {"trials.csv": run_dir / "trials.csv", "pareto.json": run_dir / "pareto.json"}


def write_report(run_dir: Path, study, config: SearchConfig, meta: RunMeta) -> dict[str, Path]:
    """Every derived file, each written atomically."""
    run_dir = Path(run_dir)
    data = report_data(study, meta, config, run_dir)
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
    except StudyDamagedError:  # names its file already
        raise
    except ReportError as exc:
        raise ReportError(f"{run_dir}: {exc}") from None
    return study, meta, config


def regenerate(run_dir: str | Path) -> dict[str, Path]:
    """``nas report RUN``: rebuild trials.csv, pareto.json, report.html and pareto.png."""
    study, meta, config = load_run(run_dir)
    return write_report(Path(run_dir), study, config, meta)


class ReportWriter:
    """Subscribes the report to a search (``nas.search.SearchObserver``): trials.csv and
    pareto.json while it runs, every derived file when it ends."""

    def trials_changed(self, view: RunView) -> None:
        write_tables(view.run_dir, view.study, view.config, view.meta)

    def search_ended(self, view: RunView) -> dict[str, Path]:
        return write_report(view.run_dir, view.study, view.config, view.meta)
