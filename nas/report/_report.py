"""Derived files of a run, computed from its study: trials.csv, pareto.json, report.html
(plotly, fully offline), pareto.png (matplotlib).

In two steps, as Optuna's plots: ``report_data`` computes a ``ReportData`` from the study, and
renderers turn it into files. ``regenerate(run_dir)`` rebuilds every derived file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any, NamedTuple

from nas._paths import atomic_write
from nas.errors import NasError, ReportError, SearchError, StudyDamagedError
from nas.report._html import marked_trial, overlay_traces, render_html
from nas.run import DeviceMeta, RunMeta, SearchConfig, read_run_config
from nas.search import (
    RunView,
    TrialRow,
    best_trial,
    hypervolume_2d,
    open_study,
    pareto_front,
    read_trials,
    rows_for_device,
)
from nas.winner import WinnerCard, winner_card_paths

__all__ = ["ReportData", "Comparison", "ReportWriter", "report_data", "compare_references", "val_images",
           "winner_cards", "write_tables", "write_report", "load_run", "regenerate", "RunFront", "run_fronts",
           "overlay_runs"]


class Comparison(NamedTuple):
    """The recommendation beside the reference networks trained in the run, with the proxy's noise.

    ``rows``: (name, proxy accuracy, predicted latency ms, within budget) with the recommendation
    first; ``verdicts``: the plain sentences the decision box says; ``n_val``: validation images
    each proxy accuracy was scored on (None when unknown: no noise estimate); ``tie_points``: two
    standard errors of the difference of two accuracies near the recommendation's, in points."""

    rows: list[tuple[str, float | None, float, bool]]
    verdicts: list[str]
    n_val: int | None
    tie_points: float | None


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
    winner: WinnerCard | None = None  # winner/card.json when the winner was exported
    fidelity: str = ""  # "" (single budget) or how successive halving's rungs were run
    winners: tuple[WinnerCard, ...] = ()  # every exported winner folder (winner/, winners/<rule>/, --out), by folder
    comparison: Comparison | None = None  # the recommendation against the reference networks
    accuracy_label: str = "proxy accuracy"  # "inherited-weight accuracy" with --proxy supernet
    accuracy_source: str = ""  # a sentence: how the accuracies were had
    # a run on several devices: the device this data is seen from ("" on one device), and in the
    # run's data, one ReportData per device (its trials' latency is that device's, its front, pick,
    # winners and comparison at that device's budget); the run's own fields are the first device's
    device: str = ""
    devices: tuple["ReportData", ...] = ()


def winner_cards(run_dir: Path | None) -> tuple[WinnerCard, ...]:
    """The cards of every exported winner of a run: ``winner/`` first, then ``winners/<rule>/`` and
    any other ``--out`` folder holding a card.json, by folder name; unreadable cards are left out."""
    if run_dir is None or not Path(run_dir).is_dir():
        return ()
    run_dir = Path(run_dir)
    cards = []
    for path in sorted(winner_card_paths(run_dir),
                       key=lambda p: (not str(p.relative_to(run_dir)).startswith("winner/"),
                                      str(p.relative_to(run_dir)))):
        try:
            card = WinnerCard.load(path)
        except NasError:
            continue
        cards.append(card.with_changes(folder=path.parent.relative_to(run_dir).as_posix()))  # where it is now
    return tuple(cards)


def _winner_card(run_dir: Path | None, device: str | None = None) -> WinnerCard | None:
    """winner/card.json (several devices: winner/<device>/card.json), None when not exported."""
    path = None if run_dir is None else Path(run_dir) / "winner" / (device or "") / "card.json"
    if path is None or not path.is_file():
        return None
    try:
        return WinnerCard.load(path)
    except NasError:  # unreadable: the page is written without it
        return None


def report_data(study, meta: RunMeta, config: SearchConfig, run_dir: Path | None = None) -> ReportData:
    """The report of a run; on several devices, the first device's view with every device's
    in ``devices``."""
    rows = read_trials(study)
    if not meta.devices:
        return _device_data(study, rows, meta, config, run_dir)
    views = tuple(_device_data(study, rows_for_device(rows, m.name), meta, config, run_dir, m) for m in meta.devices)
    return views[0]._replace(devices=views)


def _device_data(study, rows: list[TrialRow], meta: RunMeta, config: SearchConfig, run_dir: Path | None,
                 device: DeviceMeta | None = None) -> ReportData:
    """The report as seen from one device (``device`` None: the run's only one)."""
    budget = float(meta.latency_budget_ms if device is None else device.budget_ms)
    objectives = tuple(config.objectives)
    front = pareto_front(rows, budget, size="size" in objectives, memory="memory" in objectives)
    hv, pts = [], []
    for r in sorted(rows, key=lambda r: r.number):
        if r.trained and r.latency_ms is not None:
            pts.append((r.accuracy, r.latency_ms))
        if r.status != "running":
            hv.append((r.number, hypervolume_2d(pts, budget)))
    references = list(study.user_attrs.get("references", []))
    winners = winner_cards(run_dir)
    if device is not None:  # its references' latency, its winners
        references = [{**r, "latency_ms": (r.get("latencies_ms") or {}).get(device.name, r.get("latency_ms"))}
                      for r in references]
        winners = tuple(w for w in winners if w.device == device.name)
    data = ReportData(
        run=meta.study_name, space=config.space,
        device_label=meta.device_label if device is None else device.label,
        provenance=meta.device_provenance if device is None else device.provenance, budget_ms=budget,
        budget_source=meta.latency_budget_source if device is None else device.budget_source,
        objectives=objectives, dataset=meta.dataset, trials=rows, front=front,
        references=references, hypervolume=hv,
        run_dir=str(run_dir or ""), recommended=_recommended(rows, budget),
        winner=_winner_card(run_dir, device.name if device else None),
        fidelity=_fidelity_text(config), winners=winners,
        device=device.name if device else "",
        **_accuracy_text(config, study.user_attrs.get("supernet"), meta.dataset))
    return data._replace(comparison=compare_references(data, val_images(meta), meta.num_classes))


def _accuracy_text(config: SearchConfig, supernet: dict | None, dataset: str) -> dict[str, str]:
    """How the run's accuracies were had, for the page's labels and its one sentence on it."""
    if getattr(config, "proxy_kind", "train") != "supernet":
        return {"accuracy_label": "proxy accuracy",
                "accuracy_source": f"short proxy on {dataset} (a ranking signal; the test accuracy of an "
                                   f"exported model is on its card)"}
    sn = supernet or {}
    b = sn.get("budget") or {}
    trained = (f"trained once for {b.get('epochs', '?')} epochs ({sn.get('steps', '?')} steps) on the candidates "
               f"within {sn.get('limit_ms', float('nan')):.2f} ms" if sn else "trained once")
    return {"accuracy_label": "inherited-weight accuracy",
            "accuracy_source": f"inherited-weight accuracy on {dataset}: every candidate scored with the weights it "
                               f"inherits from the run's supernet (digest {sn.get('digest', '?')}, {trained}), "
                               f"batch norm re-estimated, no training of its own (a ranking signal; the test "
                               f"accuracy of an exported model is on its card)"}


def val_images(meta: RunMeta) -> int | None:
    """How many validation images each proxy accuracy was scored on: the run's validation split
    (from its dataset line), cut at the proxy's ``max_val_images``; None when not recorded."""
    m = re.search(r"/ (\d+) val", meta.dataset)
    if m is None:
        return None
    n, cap = int(m.group(1)), meta.proxy_budget.get("max_val_images")
    return min(n, int(cap)) if cap else n


def _se(p: float, n: int) -> float:
    """Binomial standard error of an accuracy ``p`` scored on ``n`` images."""
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n)


TIE_SE = 2.0  # two accuracies closer than this many standard errors of their difference are a tie
CHANCE_SE = 3.0  # an accuracy within this many standard errors of 1/num_classes is at chance


def compare_references(data: ReportData, n_val: int | None, num_classes: int) -> Comparison | None:
    """The recommendation (the exported winner, else the default pick) beside the reference
    networks trained in the run, and what may be said of them given the proxy's noise: the
    binomial standard error sqrt(p(1-p)/n_val) of each accuracy; two accuracies within
    ``TIE_SE`` standard errors of their difference are a tie, an accuracy within ``CHANCE_SE``
    standard errors of 1/num_classes is at chance. None without a recommendation."""
    mark = marked_trial(data)
    if mark is None:
        return None
    rec = mark[0]
    name = f"trial {rec.number} (this search's pick)"
    refs = [(str(r["name"]), r.get("accuracy"), float(r["latency_ms"]), float(r["latency_ms"]) <= data.budget_ms)
            for r in data.references if r.get("latency_ms") is not None]
    refs.sort(key=lambda r: r[2])
    rows: list[tuple[str, float | None, float, bool]] = [(name, rec.accuracy, float(rec.latency_ms), True), *refs]
    verdicts: list[str] = []
    acc = float(rec.accuracy)

    def tie(a: float, b: float) -> bool:
        return n_val is not None and abs(a - b) <= TIE_SE * math.sqrt(_se(a, n_val) ** 2 + _se(b, n_val) ** 2)

    chance = 1.0 / num_classes if num_classes > 0 else None
    if n_val and chance is not None and acc - chance <= CHANCE_SE * _se(chance, n_val):
        verdicts.append(
            f"The proxy accuracies are too close to chance to rank: the recommendation's {acc * 100:.1f}% is within "
            f"{CHANCE_SE:g} standard errors ({CHANCE_SE * _se(chance, n_val) * 100:.1f} points on {n_val} validation "
            f"images) of chance, 1/{num_classes} = {chance * 100:.1f}%. Train the proxy longer or on more images "
            f"(--proxy-epochs, --proxy-images) before trusting this ranking.")
    for ref, racc, _, within in refs:
        if racc is None or not within:
            continue
        if tie(acc, racc):
            verdicts.append(
                f"The search's pick and {ref} are tied: {acc * 100:.1f}% against {racc * 100:.1f}%, within "
                f"{TIE_SE:g} standard errors of their difference on {n_val} validation images; the proxy cannot "
                f"rank them, so choose by latency and size.")
        elif racc > acc:
            verdicts.append(f"The search found nothing more accurate than {ref} within the budget: consider "
                            f"shipping it ({racc * 100:.1f}% against {acc * 100:.1f}% on the same proxy).")
    near = [r for r in data.trials if r.trained and r.accuracy is not None and r.number != rec.number
            and r.latency_ms is not None and r.latency_ms <= data.budget_ms and tie(acc, float(r.accuracy))]
    if near:
        verdicts.append(
            f"{len(near)} other trial(s) within the budget are within {TIE_SE:g} standard errors of the "
            f"recommendation's accuracy (trials {', '.join(str(r.number) for r in near[:8])}"
            f"{', ...' if len(near) > 8 else ''}): the proxy does not separate them; the front table sorts them by "
            f"latency.")
    tie_points = None if n_val is None else TIE_SE * math.sqrt(2) * _se(acc, n_val) * 100
    return Comparison(rows=rows, verdicts=verdicts, n_val=n_val, tie_points=tie_points)


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

CSV_FIELDS = [f for f in TrialRow._fields if f != "latencies"]  # several devices: a column each instead


def trials_csv(data: ReportData) -> str:
    """One row per trial; on several devices ``latency_ms`` is the first device's and
    ``latency_ms_<device>`` columns follow, one per device."""
    names = [d.device for d in data.devices]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS + [f"latency_ms_{n}" for n in names])
    for r in data.trials:
        cells = ["" if v is None else "/".join("failed" if a is None else f"{a:.4f}" for a in v)
                 if isinstance(v, tuple) else v for k, v in zip(TrialRow._fields, r) if k != "latencies"]
        w.writerow(cells + [("" if not r.latencies or r.latencies.get(n) is None else r.latencies[n])
                            for n in names])
    return buf.getvalue()


def _front_points(data: ReportData) -> list[dict]:
    return [{"number": r.number, "key": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms,
             "bytes": r.bytes, "macs": r.macs, "params": r.params, "bits": r.bits, "keep": r.keep,
             "rung": r.rung, "rung_accuracy": list(r.rung_accuracy)} for r in data.front]


def pareto_json(data: ReportData) -> str:
    """The front's points; on several devices {device: {budget_ms, front}} (latency: that device's)."""
    if data.devices:
        return json.dumps({d.device: {"budget_ms": d.budget_ms, "front": _front_points(d)} for d in data.devices},
                          indent=1)
    return json.dumps(_front_points(data), indent=1)


def render_png(data: ReportData) -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise ReportError("matplotlib is not installed: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    if data.devices:
        _overlay_png(ax, data)
        return _png_bytes(fig, plt)
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
    ax.set_ylabel(f"{data.accuracy_label} (validation)")
    ax.set_title(f"{data.run}: {data.space}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _png_bytes(fig, plt)


def _png_bytes(fig, plt) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _overlay_png(ax, data: ReportData) -> None:
    """Every device's front on one plot, latency divided by that device's budget (1 = its budget)."""
    for d in data.devices:
        if d.front:
            ax.step([r.latency_ms / d.budget_ms for r in d.front], [r.accuracy for r in d.front], where="post",
                    marker="o", label=f"{d.device}: front ({len(d.front)}), budget {d.budget_ms:.2f} ms")
    ax.axvline(1.0, ls="--", c="#555", lw=1, label="each device's budget")
    ax.set_xlabel("predicted latency / the device's budget", fontsize=8)
    ax.set_ylabel(f"{data.accuracy_label} (validation)")
    ax.set_title(f"{data.run}: {data.space} on {len(data.devices)} devices", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)


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


class RunFront(NamedTuple):
    """One run's front on one device, for ``overlay_runs``."""

    run: str  # the run folder's name
    device: str
    budget_ms: float
    front: list[TrialRow]  # latency: that device's
    hypervolume: float  # of the front, normalised to the run's budget (nas.search.hypervolume_2d)


def run_fronts(run_dir: str | Path) -> dict[str, RunFront]:
    """A run's front per device ({profile name: RunFront}); one entry for a run on one device."""
    study, meta, config = load_run(run_dir)
    data = report_data(study, meta, config)
    views = data.devices or (data._replace(device=meta.device_label.split(" (")[0]),)
    return {d.device: RunFront(Path(run_dir).resolve().name, d.device, d.budget_ms, d.front,
                               hypervolume_2d([(r.accuracy, r.latency_ms) for r in d.front], d.budget_ms))
            for d in views}


def overlay_runs(run_dirs: list[str | Path], device: str | None = None,
                 out: str | Path | None = None) -> tuple[list[RunFront], dict[str, Path]]:
    """``nas report RUN_A RUN_B ...``: the fronts of several runs on one device (``device``; None:
    the first run's first device) on one chart, latency in that device's ms with each run's
    budget drawn; written as ``out`` (default ``fronts-<device>.html`` in the current folder) and
    a .png beside it. ReportError naming a run that did not price candidates on the device."""
    fronts = []
    for run_dir in run_dirs:
        per_device = run_fronts(run_dir)
        name = device or next(iter(per_device))
        if name not in per_device:
            raise ReportError(f"{run_dir} has no device {name!r}; its device(s): {', '.join(per_device)}")
        device = name
        fronts.append(per_device[name])
    html_path = Path(out) if out is not None else Path(f"fronts-{device}.html")
    fig = overlay_traces([(f.run, f.front, f.budget_ms) for f in fronts], normalise=False)
    fig.update_layout(title=f"{len(fronts)} runs on {device}")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>fronts on "
            f"{html_escape(device or '')}</title></head><body><h2>Pareto fronts of {len(fronts)} runs on "
            f"{html_escape(device or '')}</h2><ul>" +
            "".join(f"<li>{html_escape(f.run)}: {len(f.front)} front points, budget {f.budget_ms:.2f} ms, "
                    f"hypervolume {f.hypervolume:.4f}</li>" for f in fronts) + "</ul>" +
            fig.to_html(full_html=False, include_plotlyjs=True, div_id="fronts") + "</body></html>")
    atomic_write(html_path, page)
    png_path = html_path.with_suffix(".png")
    atomic_write(png_path, _fronts_png(fronts, device or ""))
    return fronts, {"html": html_path, "png": png_path}


def _fronts_png(fronts: list[RunFront], device: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for f in fronts:
        line = ax.step([r.latency_ms for r in f.front], [r.accuracy for r in f.front], where="post", marker="o",
                       label=f"{f.run} (HV {f.hypervolume:.3f})")
        ax.axvline(f.budget_ms, ls=":", lw=1, c=line[0].get_color())
    ax.set_xlabel(f"predicted latency on {device} [ms] (dotted: each run's budget)", fontsize=8)
    ax.set_ylabel("accuracy (validation)")
    ax.set_title(f"{len(fronts)} runs on {device}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _png_bytes(fig, plt)


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
