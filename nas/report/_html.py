"""report.html: a decision page. It opens with the model to take (the exported winner, or the
trial ``nas distill`` would pick) and the command that ships it, then a sortable table of the
Pareto front with the command that picks each point, then the plot (winner marked, references
labelled, over-budget candidates in a strip of their own), then the hypervolume over trials.
Self-contained: plotly is inlined, nothing is fetched. Works at phone width (390 px): the charts
fit the width, the front table scrolls sideways in its own box, the legend sits under the plot.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from nas.errors import ReportError
from nas.winner import host_line

__all__ = ["render_html", "title", "marked_trial", "overlay_traces"]

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_CSS = ("body{font-family:sans-serif;margin:1em;max-width:1200px}td,th{padding:3px 8px;text-align:left;"
        "vertical-align:top}th{cursor:pointer;background:#f1f3f5}code{font-size:11px;word-break:break-all}"
        ".box{border:2px solid #ffbf00;border-radius:6px;padding:.6em 1em;margin:1em 0;background:#fffbea}"
        # a wide table scrolls sideways inside its own box; the page itself never does
        ".scroll{overflow-x:auto;max-width:100%;border:1px solid #e3e6ea;border-radius:4px}"
        "tr.winner{background:#fff3c4;font-weight:bold}pre{white-space:pre-wrap;"
        "word-break:break-all;background:#f6f8fa;padding:.4em}.plotly-graph-div{max-width:100%}"
        # long keys and commands keep a readable width: a narrow screen scrolls the table sideways
        "#front-table td.key{min-width:26em}#front-table td.cmd{min-width:17em}"
        # a phone (390 px): the title in 2-3 lines, not 5; the boxes use the whole width
        "@media (max-width:600px){body{margin:.5em}h2{font-size:1.05em;line-height:1.3}h3{font-size:1em}"
        ".box{padding:.4em .6em}#front-table td.key{min-width:20em}#front-table td.cmd{min-width:14em}}")


def title(data) -> str:
    head = data.provenance.split(",")[0]  # "estimated" of "estimated, expected error ±12%"
    if data.provenance in data.device_label:  # the label names the provenance already: once is enough
        tail = ""
    elif head in data.device_label:  # only what the label does not say (a phone's width is 2-3 lines)
        tail = f" (device numbers: {data.provenance[len(head):].lstrip(', ')})"
    else:
        tail = f" (device numbers {data.provenance})"
    return f"{data.run}: {data.space} on {data.device_label}, latency budget {data.budget_ms:.2f} ms" + tail


def marked_trial(data) -> tuple[Any, str] | None:
    """(row, label) of the model the page recommends: the exported winner, else the best pick."""
    if data.winner is not None:
        row = next((r for r in data.trials if r.number == data.winner.trial), None)
        if row is not None and row.accuracy is not None:
            return row, "exported winner"
    if data.recommended is not None:
        return data.recommended, "recommended, not exported yet"
    return None


def _dev(data) -> list[str]:
    """``--device NAME`` for the commands of a device's section (a run on several devices)."""
    return ["--device", data.device] if getattr(data, "device", "") else []


def _cmd(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _pct(v) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _decision(data) -> str:
    run = data.run_dir or data.run
    mark = marked_trial(data)
    if mark is None:
        return ("<div class='box' id='decision'><b>No trained trial within the budget yet.</b> "
                f"Continue the search: <code>{html.escape(_cmd('nas', 'search', '--resume', run))}</code></div>")
    r, label = mark
    w = data.winner if label == "exported winner" else None
    size = f"{r.bytes / 1e6:.2f} MB" if r.bytes else "n/a"
    mem = f"{r.memory / 1024:.0f} KB" if r.memory else "n/a"
    lines = [f"<h3>Take this model: trial {r.number} ({html.escape(label)})</h3>", *_ship_lead(w),
             f"<p><code>{html.escape(r.key)}</code></p><ul>",
             f"<li>Predicted latency on {html.escape(data.device_label)}: <b>{r.latency_ms:.3f} ms</b> "
             f"({html.escape(data.provenance)}), budget {data.budget_ms:.2f} ms</li>",
             f"<li>Proxy accuracy (search): {_pct(r.accuracy)}"
             + (f"; test accuracy fp32 {_pct(w.test_accuracy_fp32)}, int8 {_pct(w.test_accuracy_int8)}"
                if w else "") + "</li>",
             f"<li>Size: {size} at its bit widths ({html.escape(r.bits)}), "
             f"{(r.params or 0) / 1e6:.2f}M parameters, {(r.macs or 0) / 1e6:.1f}M MACs</li>",
             f"<li>Peak memory at batch 1: {mem} (largest live activations at its bit widths, plus weights; "
             f"computed from its operators)</li>"]
    if w:
        folder = f"{run}/{w.folder}"
        lines.append(f"<li>Files in <code>{html.escape(folder)}/</code>: "
                     f"{', '.join(f'<code>{html.escape(f)}</code>' for f in _model_files(w))}, card "
                     f"<code>card.md</code>.</li></ul>")
        again = _cmd('nas', 'distill', run, *_dev(data), '--pick', f'trial={r.number}', '--force')
        lines.append(f"<p>Re-export it: <code>{html.escape(again)}</code></p>")
    else:
        lines.append("</ul>")
        lines.append(f"<p>Train and export it: <code>{html.escape(_cmd('nas', 'distill', run, *_dev(data)))}</code></p>")
    return "<div class='box' id='decision'>" + "".join(lines) + _comparison(data) + "</div>"


def _ship_lead(w) -> list[str]:
    """The decision's first line for an exported winner: the file the target device runs (its
    profile's runtime and predicted int8 speed-up), then this host's timing, said for what it is."""
    if w is None:
        return []
    host = host_line(w)
    return [f"<p id='ship'><b>Ship {html.escape(w.ship)}.</b>"
            + (f"<br><small>{html.escape(host)}.</small>" if host else "") + "</p>"]


def _model_files(card) -> list[str]:
    """The model files a winner's card lists (ONNX, .tflite and .pte, fp32 and int8), in its order."""
    return [f for f in card.files if f.endswith((".onnx", ".tflite", ".pte"))]


def _formats(card) -> str:
    names = {"model.onnx": "ONNX fp32", "model.int8.onnx": "ONNX int8", "model.tflite": ".tflite fp32",
             "model.int8.tflite": ".tflite int8", "model.pte": ".pte fp32", "model.int8.pte": ".pte int8"}
    return ", ".join(names.get(f, f) for f in _model_files(card))


def _winners(data) -> str:
    """Every exported winner folder of the run, its files, formats and test accuracies, from its card."""
    if not data.winners:
        return ""
    run = data.run_dir or data.run
    rows = []
    for w in data.winners:
        tfl = w.tflite
        lite = (f"fp32 {_pct(tfl.test_accuracy_fp32)}, int8 {_pct(tfl.test_accuracy_int8)}" if tfl.written
                else html.escape(tfl.note or "not exported"))
        rows.append(
            f"<tr><td><code>{html.escape(w.folder)}/</code></td><td>{html.escape(w.pick)}</td><td>{w.trial}</td>"
            f"<td>{html.escape(_formats(w))}</td>"
            f"<td>{html.escape(w.trained_at.start if w.trained_at else 'not recorded')}</td>"
            f"<td>fp32 {_pct(w.test_accuracy_fp32)}, int8 {_pct(w.test_accuracy_int8)}</td><td>{lite}</td>"
            f"<td>{' '.join(f'<code>{html.escape(f)}</code>' for f in [*_model_files(w), 'card.md'])}</td>"
            f"<td>{html.escape(w.ship)}</td></tr>")
    return (f"<h3 id='winners'>Exported winners ({len(data.winners)})</h3><p>In <code>{html.escape(run)}</code>; "
            "test accuracies measured with the exported files (the held-out test split).</p><div class='scroll'>"
            "<table id='winners-table'><thead><tr><th>folder</th><th>pick</th><th>trial</th><th>formats</th><th>start</th>"
            "<th>ONNX test accuracy</th><th>.tflite test accuracy</th><th>files</th><th>ship</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _comparison(data) -> str:
    """The recommendation beside the reference networks trained in the run (a small table), and
    what the proxy's noise allows to say of them."""
    c = getattr(data, "comparison", None)
    if c is None or (len(c.rows) == 1 and not c.verdicts):
        return ""
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{_pct(a)}</td><td>{ms:.3f}</td>"
                   f"<td>{'yes' if ok else 'no, over budget'}</td></tr>" for n, a, ms, ok in c.rows)
    noise = (f"Each {html.escape(data.accuracy_label)} was scored on {c.n_val} validation images: about "
             f"&plusmn;{c.tie_points:.1f} points separate two of them from a tie (two standard errors)."
             if c.n_val and c.tie_points is not None else "The validation size is not recorded: no noise estimate.")
    says = "".join(f"<p class='verdict'><b>{html.escape(v)}</b></p>" for v in c.verdicts)
    return ("<h4>Against the reference networks (same proxy)</h4><div class='scroll'><table id='references'>"
            f"<thead><tr><th>network</th><th>{html.escape(data.accuracy_label)}</th><th>latency ms</th>"
            "<th>within budget</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>{says}<p><small>{noise}</small></p>")


def _front_table(data, marked_number: int | None) -> str:
    run = data.run_dir or data.run
    rung = bool(data.fidelity)
    head = (f"<tr><th>trial</th><th>{html.escape(data.accuracy_label)}</th>" + ("<th>rung</th>" if rung else "") +
            "<th>latency ms</th><th>size MB</th><th>memory KB</th><th>MACs M</th>"
            "<th>bits (width:blocks)</th><th>keep</th><th>key</th><th>export it</th></tr>")
    rows = []
    for r in data.front:
        cls = " class='winner'" if r.number == marked_number else ""
        rows.append(
            f"<tr{cls}><td data-v='{r.number}'>{r.number}</td><td data-v='{r.accuracy}'>{_pct(r.accuracy)}</td>"
            + (f"<td data-v='{r.rung}'>{r.rung}</td>" if rung else "") +
            f"<td data-v='{r.latency_ms}'>{r.latency_ms:.3f}</td><td>{(r.bytes or 0) / 1e6:.2f}</td>"
            f"<td data-v='{r.memory or 0}'>{(r.memory or 0) / 1024:.0f}</td>"
            f"<td>{(r.macs or 0) / 1e6:.1f}</td><td>{html.escape(r.bits)}</td><td>{html.escape(r.keep)}</td>"
            f"<td class='key'><code>{html.escape(r.key)}</code></td>"
            f"<td class='cmd'><code>{html.escape(_cmd('nas', 'distill', run, *_dev(data), '--pick', f'trial={r.number}'))}"
            f"</code></td></tr>")
    n = len(data.front)
    return (f"<h3>The Pareto front ({n} trial{'' if n == 1 else 's'}; click a column to sort)</h3><div class='scroll'>"
            f"<table class='sortable' id='front-table'><thead>{head}</thead><tbody>{''.join(rows)}</tbody>"
            "</table></div>")


def _hover(r) -> str:
    acc = "not trained" if r.accuracy is None else f"{r.accuracy:.4f}"
    rungs = " / ".join("failed" if a is None else f"{a:.3f}" for a in r.rung_accuracy)
    parts = [f"trial {r.number} ({r.status})", f"accuracy {acc}",
             f"rung {r.rung} (by rung: {rungs})" if len(r.rung_accuracy) > 1 else "", f"latency {r.latency_ms:.3f} ms",
             f"MACs {r.macs / 1e6:.1f}M" if r.macs else "", f"params {r.params / 1e6:.3f}M" if r.params else "",
             f"bits {r.bits}", f"keep {r.keep}", f"<span style='font-size:9px'>{html.escape(r.key)}</span>"]
    return "<br>".join(p for p in parts if p)


def _figure(data, mark):
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:  # pragma: no cover
        raise ReportError("plotly is not installed: pip install plotly") from None
    trained = [r for r in data.trials if r.trained and r.latency_ms is not None]
    over = [r for r in data.trials if r.status == "over_budget" and r.latency_ms is not None]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.86, 0.14], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in trained], y=[r.accuracy for r in trained], mode="markers",
                             name=f"trained trials ({len(trained)})", marker=dict(color="#9aa5b1", size=7),
                             hovertext=[_hover(r) for r in trained], hoverinfo="text"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in data.front], y=[r.accuracy for r in data.front],
                             mode="lines+markers", line=dict(shape="hv", color="#d62728"), marker=dict(size=10),
                             name=f"Pareto front ({len(data.front)})",
                             hovertext=[_hover(r) for r in data.front], hoverinfo="text"), row=1, col=1)
    if mark is not None:
        r, label = mark
        fig.add_trace(go.Scatter(x=[r.latency_ms], y=[r.accuracy], mode="markers", name=f"{label}: trial {r.number}",
                                 marker=dict(symbol="star", size=20, color="#ffbf00", line=dict(color="black", width=1)),
                                 hovertext=[_hover(r)], hoverinfo="text"), row=1, col=1)
    refs = [r for r in data.references if r.get("accuracy") is not None]
    if refs:
        xs = [r["latency_ms"] for r in refs] + [r.latency_ms for r in trained] + [data.budget_ms]
        mid = (min(xs) + max(xs)) / 2
        fig.add_trace(go.Scatter(x=[r["latency_ms"] for r in refs], y=[r["accuracy"] for r in refs],
                                 mode="markers+text", text=[r["name"] for r in refs], cliponaxis=False,
                                 textposition=["top left" if r["latency_ms"] > mid else "top right" for r in refs],
                                 textfont=dict(size=10), marker=dict(symbol="diamond", size=11, color="#1f77b4"),
                                 name="reference networks (same proxy)",
                                 hovertext=[f"{r['name']}<br>accuracy {r['accuracy']:.4f}<br>latency "
                                            f"{r['latency_ms']:.3f} ms" for r in refs], hoverinfo="text"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[r.latency_ms for r in over], y=[0] * len(over), mode="markers",
                             name=f"over budget, not trained ({len(over)})",
                             marker=dict(color="#e4a11b", symbol="line-ns-open", size=14),
                             hovertext=[_hover(r) for r in over], hoverinfo="text"), row=2, col=1)
    for row in (1, 2):
        fig.add_vline(x=data.budget_ms, line_dash="dash", line_color="#555", row=row, col=1)
    fig.add_annotation(x=data.budget_ms, y=1.0, yref="paper", text=f"budget {data.budget_ms:.2f} ms",
                       showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11))
    fig.update_yaxes(title_text=data.accuracy_label, row=1, col=1)
    fig.update_yaxes(showticklabels=False, title_text="over<br>budget", range=[-1, 1], row=2, col=1)
    fig.update_xaxes(title_text=f"predicted latency [ms]<br>on {data.device_label}", title_font=dict(size=12),
                     row=2, col=1)  # two lines: one was wider than a phone
    # the legend under the plot (above it, it covered the mode bar: the zoom and download buttons);
    # the top margin keeps the budget label below the mode bar
    fig.update_layout(template="plotly_white", height=640, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, xanchor="left"))
    return fig


def render_html(data) -> str:
    """One self-contained page (plotly inlined, nothing fetched); a run on several devices: the
    overlay of every device's front (latency over its budget), then one section per device."""
    config = {"responsive": True, "displaylogo": False}
    head = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(data.run)}: hwnas report</title><style>{_CSS}</style></head><body>",
    ]
    if not data.devices:
        body = head + [f"<h2>{html.escape(title(data))}</h2>", *_device_body(data, "", True, config)]
    else:
        names = [d.device for d in data.devices]
        body = head + [
            f"<h2>{html.escape(data.run)}: {html.escape(data.space)} on {len(names)} devices, a model for each</h2>",
            "<p id='devices'>" + " · ".join(f"<a href='#device-{html.escape(n)}'>{html.escape(d.device_label)}, "
                                           f"budget {d.budget_ms:.2f} ms</a>" for n, d in zip(names, data.devices))
            + "</p>",
            "<h3>Every device's front, latency over its budget</h3><p>One search priced every candidate on every "
            "device: each curve is one device's Pareto front, its latency divided by that device's budget "
            "(1 = the budget).</p>",
            _overlay_figure(data).to_html(full_html=False, include_plotlyjs=True, div_id="overlay", config=config),
        ]
        for d in data.devices:
            body += [f"<section id='device-{html.escape(d.device)}'><h2>{html.escape(title(d))}</h2>",
                     *_device_body(d, f"-{d.device}", False, config), "</section>"]
    failed = [r for r in data.trials if r.status == "failed"]
    if failed:
        rows = "".join(f"<tr><td>{r.number}</td><td><code>{html.escape(r.key)}</code></td>"
                       f"<td>{html.escape(r.reason)}</td></tr>" for r in failed)
        body.append(f"<h3>Failed trials ({len(failed)})</h3><div class='scroll'><table id='failed'><tr><th>trial</th>"
                    f"<th>candidate</th><th>reason</th></tr>{rows}</table></div>")
    body.append(f"<script>{_SORT_JS}</script></body></html>")
    return "\n".join(body)


def _device_body(data, suffix: str, plotlyjs: bool, config: dict) -> list[str]:
    """The decision, the winners, the front table, the plot and the hypervolume of one device."""
    import plotly.graph_objects as go

    mark = marked_trial(data)
    fig = _figure(data, mark)
    hv = go.Figure(go.Scatter(x=[n for n, _ in data.hypervolume], y=[v for _, v in data.hypervolume],
                              mode="lines", line=dict(shape="hv")))
    hv.update_layout(xaxis_title="trial", yaxis_title="hypervolume", template="plotly_white", height=280,
                     margin=dict(l=50, r=20, t=20, b=40))
    counts = {s: sum(1 for r in data.trials if r.status == s)
              for s in ("evaluated", "duplicate", "over_budget", "failed", "interrupted", "running")}
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
    top = _decision(data) + _winners(data)
    for name in ("decision", "ship", "references", "winners", "winners-table"):  # one id per page
        top = top.replace(f"id='{name}'", f"id='{name}{suffix}'")
    return [
        top,
        f"<p>Latency: predicted from the <b>{html.escape(data.device_label)}</b> profile; these numbers "
        f"are <b>{html.escape(data.provenance)}</b>. Budget: {html.escape(data.budget_source)}. "
        f"Accuracy: {html.escape(data.accuracy_source)}" +
        (f"; {html.escape(data.fidelity)}" if data.fidelity else "") + ".</p>",
        f"<p id='summary{suffix}'>Trials: {html.escape(summary)}" +
        ("; over budget means over every device's budget" if suffix else "") + ".</p>",
        _front_table(data, mark[0].number if mark else None),
        "<h3>Accuracy against latency</h3>",
        fig.to_html(full_html=False, include_plotlyjs=plotlyjs, div_id=f"front{suffix}", config=config),
        "<h3>Hypervolume over trials</h3><p>How much of the accuracy-latency plane under the budget the front "
        "covers (0 to 1); when it stops rising, more trials are unlikely to find better models.</p>",
        hv.to_html(full_html=False, include_plotlyjs=False, div_id=f"hypervolume{suffix}", config=config),
    ]


def overlay_traces(fronts: list[tuple[str, list, float]], normalise: bool):
    """A plotly figure of several fronts: (name, front rows, budget ms) each; ``normalise``:
    latency divided by each budget (several devices), else in ms with each budget drawn."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, front, budget in fronts:
        xs = [r.latency_ms / budget if normalise else r.latency_ms for r in front]
        fig.add_trace(go.Scatter(x=xs, y=[r.accuracy for r in front], mode="lines+markers",
                                 line=dict(shape="hv"), name=f"{name} ({len(front)}), budget {budget:.2f} ms",
                                 hovertext=[f"{name}<br>{_hover(r)}" for r in front], hoverinfo="text"))
        if not normalise:
            fig.add_vline(x=budget, line_dash="dot", line_color="#999")
    if normalise:
        fig.add_vline(x=1.0, line_dash="dash", line_color="#555")
    fig.update_layout(template="plotly_white", height=480, margin=dict(l=50, r=20, t=30, b=40),
                      xaxis_title="predicted latency / the device's budget" if normalise else "predicted latency [ms]",
                      yaxis_title="accuracy", legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig


def _overlay_figure(data):
    return overlay_traces([(d.device, d.front, d.budget_ms) for d in data.devices], normalise=True)
