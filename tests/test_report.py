"""nas.report._report and nas.report._html: the decision page, its table and plot, pareto.png."""

import re

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
