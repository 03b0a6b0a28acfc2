"""nas.report._report and nas.report._html: the decision page, its table and plot, pareto.png."""

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
