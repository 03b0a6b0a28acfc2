"""nas.report._report and nas.report._html: the decision page, its table and plot, pareto.png."""

import html
import re
import shutil

import pytest

from nas.report import load_run, report_data
from nas.report._html import _figure, marked_trial, render_html


def test_the_page_opens_with_the_model_to_take_and_a_table_of_the_front(run5):
    run = run5[0] / "run"
    study, meta, cfg = load_run(run)
    data = report_data(study, meta, cfg, run)
    page = render_html(data)
    rec = data.recommended
    assert rec is not None and f"Take this model: trial {rec.number}" in page
    assert page.index("id='decision'") < page.index("id='front-table'") < page.index('id="front"')
    assert f"nas distill {run}" in page  # how to export it (not exported yet in this run)
    table = page[page.index("id='front-table'"):page.index("</table>", page.index("id='front-table'"))]
    assert len(re.findall(r"<tr[ >]", table)) == 1 + len(data.front)  # header + one row per front point
    for r in data.front:
        assert f"--pick trial={r.number}" in table
    assert "class='winner'" in table or rec.number not in {r.number for r in data.front}
    assert "viewport" in page and "<script src=\"http" not in page
    assert "these numbers are <b>estimated, expected error ±" in page  # pixel7's error bar (issue 28)


def test_over_budget_trials_are_drawn_apart_and_the_winner_is_marked(run5):
    run = run5[0] / "run"
    study, meta, cfg = load_run(run)
    data = report_data(study, meta, cfg, run)
    fig = _figure(data, marked_trial(data))
    by_name = {t.name.split(" (")[0]: t for t in fig.data}
    over = by_name["over budget, not trained"]
    assert over.yaxis == "y2"  # its own strip, never at accuracy 0 among the trained trials
    assert all(t.yaxis in (None, "y") for n, t in by_name.items() if n != "over budget, not trained")
    star = next(t for t in fig.data if t.marker.symbol == "star")
    assert list(star.x) == [data.recommended.latency_ms] and list(star.y) == [data.recommended.accuracy]


def test_png_marks_the_winner(run5):
    from PIL import Image

    img = Image.open(run5[0] / "run" / "pareto.png").convert("RGB")
    gold = sum(n for n, c in img.getcolors(1 << 20) if c == (255, 191, 0))
    assert gold > 20  # the star is drawn


# ----------------------------------------------------------------------------- the recommendation against the references

def _built_run(trials: list[tuple[float, float]], refs: list[tuple[str, float, float]], n_val: int = 2000,
               num_classes: int = 10, budget: float = 3.0):
    """(study, meta, config) of a run written directly: trained trials (accuracy, latency ms) and
    trained reference networks (name, accuracy, latency ms), scored on ``n_val`` validation images."""
    import optuna
    from conftest import sample

    from nas.run import RunMeta, SearchConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    keys = sample("mobilenetv3", len(trials) + len(refs), seed=1)
    for (acc, ms), cand in zip(trials, keys):
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, values=[acc, ms],
            user_attrs={"key": cand.key, "latency_ms": ms, "status": "evaluated", "accuracy": acc,
                        "info": {"macs": 1_000_000, "params": 1000, "bytes": 1000, "bits": "32:1", "keep": "1-1"}}))
    study.set_user_attr("references", [{"name": n, "key": c.key, "latency_ms": ms, "accuracy": acc, "macs": 1}
                                       for (n, acc, ms), c in zip(refs, keys[len(trials):])])
    meta = RunMeta(study_name="built", storage="", latency_budget_ms=budget, latency_budget_source="--latency-ms",
                   device_label="pixel7", device_provenance="estimated", device_source="estimated",
                   dataset=f"built: 8000 train / {n_val + 500} val / 1000 test images, 32x32x3, {num_classes} classes",
                   num_classes=num_classes, proxy_budget={"max_val_images": n_val})
    return study, meta, SearchConfig(device="pixel7", space="mobilenetv3", proxy_kind="train")  # short-proxy scores


def _page(study, meta, cfg):
    data = report_data(study, meta, cfg)
    page = render_html(data)
    return data, html.unescape(page[page.index("id='decision'"):page.index("<p>Latency: predicted")])  # the box


def test_a_reference_more_accurate_within_the_budget_is_recommended_plainly():
    # 2,000 validation images: two standard errors of a difference near 70% are 2.9 points (issue 25's
    # 69.7% against 71.4% is a tie there: the next test); 74.4% is beyond them
    study, meta, cfg = _built_run([(0.697, 2.29), (0.60, 1.5)],
                                  [("mobilenet_v3_small_1.0_224", 0.744, 2.9), ("mobilenet_v3_large_1.0_224", 0.80, 9.0)])
    data, box = _page(study, meta, cfg)
    assert data.comparison.n_val == 2000  # the val split (2,500) cut at the proxy's max_val_images
    assert ("the search found nothing more accurate than mobilenet_v3_small_1.0_224 within the budget: consider "
            "shipping it").lower() in box.lower()
    assert "mobilenet_v3_large_1.0_224" in box and "no, over budget" in box  # listed, never recommended
    assert "large_1.0_224 within the budget" not in box
    # the table: the pick first, then the references by latency, accuracy and latency side by side
    assert box.index("trial 0 (this search") < box.index("small_1.0_224") < box.index("large_1.0_224")
    assert "69.7%" in box and "74.4%" in box and "2.290" in box and "2.900" in box
    assert "tied" not in box and "chance" not in box


def test_accuracies_within_two_standard_errors_are_a_tie():
    # issue 25's numbers on 2,000 images: 71.4% against 69.7% is within 2.9 points, a tie
    study, meta, cfg = _built_run([(0.697, 2.29), (0.69, 1.2)], [("mobilenet_v3_small_1.0_224", 0.714, 2.9)],
                                  n_val=2000)
    _, box = _page(study, meta, cfg)
    assert "The search's pick and mobilenet_v3_small_1.0_224 are tied" in box
    assert "consider shipping it" not in box
    assert "1 other trial(s) within the budget are within 2 standard errors" in box and "(trials 1)" in box
    # the same numbers on 20,000 images are not a tie: the reference is simply better
    study, meta, cfg = _built_run([(0.697, 2.29), (0.60, 1.2)], [("mobilenet_v3_small_1.0_224", 0.714, 2.9)],
                                  n_val=20000)
    _, box = _page(study, meta, cfg)
    assert "consider shipping it" in box and "tied" not in box and "other trial" not in box


def test_accuracies_near_chance_are_too_noisy_to_rank():
    # 10 classes on 150 images: chance is 10%, its standard error 2.4 points; 16% is within 3 of them
    study, meta, cfg = _built_run([(0.16, 2.0), (0.12, 1.0)], [("mobilenet_v3_small_1.0_224", 0.11, 2.5)], n_val=150)
    _, box = _page(study, meta, cfg)
    assert "too close to chance to rank" in box and "1/10 = 10.0%" in box and "--proxy-epochs" in box
    assert "consider shipping it" not in box
    # far from chance: no such warning
    study, meta, cfg = _built_run([(0.40, 2.0)], [("mobilenet_v3_small_1.0_224", 0.11, 2.5)], n_val=150)
    _, box = _page(study, meta, cfg)
    assert "chance" not in box and "tied" not in box and "consider shipping" not in box


# ----------------------------------------------------------------------------- a report that is never stale

@pytest.mark.slow
def test_the_report_follows_the_winners_distill_and_export(tmp_path, small_run):
    from conftest import copy_run

    from nas.api import distill_run, export_run
    from nas.winner import DistillConfig

    # a copy of the shared 3-trial pixel7 search, as its search left it
    run = copy_run(small_run[1], tmp_path / "r")
    page = (run / "report.html").read_text()
    assert "not exported yet" in page and "id='winners'" not in page  # the search alone: nothing exported
    fast = dict(epochs=0.2, own_side_epochs=0.1, measure_host=False, tflite=True)
    card = distill_run(run, DistillConfig(**fast, force=True))  # what the end of `nas search` runs
    assert card.tflite.written, card.tflite.errors
    page = html.unescape((run / "report.html").read_text())
    assert "not exported yet" not in page and f"Take this model: trial {card.trial} (exported winner)" in page
    assert f"test accuracy fp32 {card.test_accuracy_fp32 * 100:.1f}%" in page
    assert "model.tflite" in page and "model.int8.tflite" in page and ".tflite int8" in page
    lead = page[page.index("id='decision'"):page.index("<ul>", page.index("id='decision'"))]
    assert f"Ship {card.ship}." in lead and ".tflite" in card.ship.split(":")[0]  # a Pixel runs LiteRT
    knee = distill_run(run, DistillConfig(**fast, pick="knee"))
    page = html.unescape((run / "report.html").read_text())
    table = page[page.index("id='winners-table'"):page.index("</table>", page.index("id='winners-table'"))]
    assert "<code>winner/</code>" in table and "<code>winners/knee/</code>" in table
    assert f"fp32 {knee.test_accuracy_fp32 * 100:.1f}%" in table
    before = (run / "report.html").stat().st_mtime_ns
    export_run(run, "winners/knee", ("onnx",))
    assert (run / "report.html").stat().st_mtime_ns > before  # `nas export` refreshes it too


def test_the_page_counts_in_the_singular_and_nests_no_parentheses(run5):
    run = run5[0] / "run"
    study, meta, cfg = load_run(run)
    data = report_data(study, meta, cfg, run)
    assert data.winner is None and data.recommended is not None
    one = render_html(data._replace(front=data.front[:1]))
    assert "The Pareto front (1 trial;" in one
    page = render_html(data)
    assert f"The Pareto front ({len(data.front)} trials;" in page or len(data.front) == 1
    decision = page[page.index("Take this model"):page.index("</h3>", page.index("Take this model"))]
    assert decision == f"Take this model: trial {data.recommended.number} (recommended, not exported yet)"
    assert "(recommended (" not in page and "recommended (not" not in page  # decision box, legend


PROBE = """<html><body style='margin:0'><iframe id='f' src='%s' style='border:0;width:%dpx;height:2400px'></iframe>
<pre id='out'></pre><script>
document.getElementById('f').addEventListener('load', function () { setTimeout(function () {
  var d = document.getElementById('f').contentDocument, r = function (e) { return e.getBoundingClientRect(); };
  var box = d.querySelector('#front-table').parentElement, h2 = d.querySelector('h2');
  var leg = r(d.querySelector('#front .legend')), bar = r(d.querySelector('#front .modebar'));
  var over = !(leg.right < bar.left || bar.right < leg.left || leg.bottom < bar.top || bar.bottom < leg.top);
  document.getElementById('out').textContent = JSON.stringify({page: d.documentElement.scrollWidth,
    box: box.clientWidth, table: box.scrollWidth, front: r(d.getElementById('front')).right,
    hv: r(d.getElementById('hypervolume')).right,
    title_lines: Math.round(r(h2).height / (1.25 * parseFloat(getComputedStyle(h2).fontSize))),
    legend_over_modebar: over});
}, 1500); });
</script></body></html>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.slow
@pytest.mark.parametrize("width", [390, 1400])
def test_the_page_fits_a_phone_and_the_legend_leaves_the_mode_bar_free(run5, tmp_path, width):
    """Measured in headless chromium: the page in an iframe of that width (chromium's own window is
    at least 500 px wide, so a 390 px window would only crop a wider page)."""
    import json
    import subprocess

    page = run5[0] / "run" / "report.html"
    wrap = tmp_path / "wrap.html"
    wrap.write_text(PROBE % (page.as_uri(), width))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--allow-file-access-from-files", "--proxy-server=127.0.0.1:9", "--virtual-time-budget=8000",
                          f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2400", "--dump-dom",
                          wrap.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = json.loads(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1))
    assert m["page"] <= width  # the page never scrolls sideways
    assert m["front"] <= width and m["hv"] <= width  # the charts fit the width
    assert m["box"] < width and (m["table"] > m["box"] or width > 1000)  # on a phone the table scrolls in its box
    assert not m["legend_over_modebar"]
    assert m["title_lines"] <= (3 if width < 500 else 2)
