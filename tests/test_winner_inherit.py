"""The winner inherits from the run's supernet (issue 26, item 4): it starts from the weights the
supernet gives it, without distillation by default, and with --kd is distilled from the
supernet's largest member (trained already: no teacher is trained); --teacher none never
distils, inherit=False ignores the supernet, and the card and the report say which start the
winner had."""

import html
import json
import shutil

import optuna
import pytest
import torch
from conftest import copy_run
from test_card import old_card

from nas.api import distill_run
from nas.errors import DistillError
from nas.models import strip_fake_quant
from nas.run import open_run
from nas.search import open_study, read_trials
from nas.supernet import (
    Supernet,
    SupernetBudget,
    SupernetTraining,
    load_supernet,
    read_training,
    save_supernet,
    train_supernet,
)
from nas.train import load_checkpoint
from nas.winner import NO_TEACHER, DistillConfig, WinnerCard, pick_winner

optuna.logging.set_verbosity(optuna.logging.WARNING)
# lr 0 and no own-side fine-tuning: the exported weights are the start's (only statistics move)
FROZEN = dict(epochs=0.1, lr=0.0, own_side_epochs=0.0, measure_host=False, tflite=False)
TRAINED = {**FROZEN, "lr": 0.1}  # a random init at lr 0 is no network to export
BUDGET = SupernetBudget(epochs=1.0, max_train_images=256, batch_size=32, random_members=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_run):
    """(a copy of the shared 3-trial run, without a supernet; another copy with a tiny trained
    supernet saved in it)."""
    out = tmp_path_factory.mktemp("inherit")
    plain = copy_run(small_run[1], out / "plain")
    with_net = copy_run(small_run[1], out / "with-supernet")
    ctx = open_run(with_net, download=False)
    torch.manual_seed(0)
    net = Supernet(ctx.space, ctx.dataset.num_classes, ctx.dataset.in_channels)
    training = train_supernet(net, ctx.dataset, BUDGET, seed=0, threads=2)
    save_supernet(with_net, net, training, BUDGET, seed=0)
    return plain, with_net


def _winner(run_dir):
    ctx = open_run(run_dir, download=False)
    win = pick_winner(read_trials(open_study(ctx.meta.study_name, ctx.meta.storage)), ctx.budget_ms, "best")
    return ctx, ctx.space.parse(win.key)


def _params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.slow
def test_the_winner_starts_from_the_supernet_and_kd_distils_it_from_the_largest_member(runs):
    _, run_dir = runs
    record = read_training(run_dir)
    ctx, cand = _winner(run_dir)
    net = load_supernet(run_dir, ctx.space)
    card = distill_run(run_dir, DistillConfig(**FROZEN, kd=True))
    # the start: the supernet's extraction at the side the supernet trained the winner at
    # (weights, fake-quantized at its bits, exactly; trained at lr 0 they stay the start's)
    shipped, _ = load_checkpoint(run_dir / "winner" / "model.pt")
    start = _params(strip_fake_quant(net.extract(cand, ctx.proxy_side(cand))))
    got = _params(shipped)
    assert sorted(got) == sorted(start)
    for k in start:
        assert torch.equal(got[k], start[k]), k
    # the teacher: the supernet's largest member; nothing was trained for it
    largest = record["training"]["largest"]
    assert card.teacher == largest and card.distillation.kd and card.distillation.teacher_net == "supernet"
    assert card.training_seconds.teacher == 0.0 and card.distillation.teacher_epochs == 0.0
    assert not (run_dir / "teachers").exists()
    assert f"digest {record['digest']}" in card.teacher_source and 0 <= card.teacher_accuracy <= 1
    # the card and the report say so
    said = f"initialised from the supernet (digest {record['digest']}), distilled from its largest member {largest}"
    assert card.trained_at.start == said and card.trained_at.supernet == record["digest"]
    assert f"- Start: {said}." in (run_dir / "winner" / "card.md").read_text()
    assert WinnerCard.load(run_dir / "winner" / "card.json") == card
    page = html.unescape((run_dir / "report.html").read_text())
    table = page[page.index("id='winners-table'"):page.index("</table>", page.index("id='winners-table'"))]
    assert said in table


@pytest.mark.slow
def test_by_default_the_winner_keeps_the_start_undistilled_and_inherit_false_trains_from_scratch(runs):
    _, run_dir = runs
    digest = read_training(run_dir)["digest"]
    ctx, cand = _winner(run_dir)
    start = _params(strip_fake_quant(load_supernet(run_dir, ctx.space).extract(cand, ctx.proxy_side(cand))))
    # the default, and --teacher none even with --kd: the inherited start, no teacher
    for name, extra in (("plain", {}), ("alone", {"teacher": NO_TEACHER, "kd": True})):
        alone = distill_run(run_dir, DistillConfig(**FROZEN, **extra, out=name))
        assert alone.teacher is None and not alone.distillation.kd, name
        assert alone.trained_at.start == f"initialised from the supernet (digest {digest}), no distillation"
        got = _params(load_checkpoint(run_dir / name / "model.pt")[0])
        assert all(torch.equal(got[k], start[k]) for k in start), name
    assert not (run_dir / "teachers").exists()
    scratch = distill_run(run_dir, DistillConfig(**TRAINED, inherit=False, out="scratch"))
    assert scratch.trained_at.start == "from scratch" and scratch.trained_at.supernet is None
    assert scratch.teacher is None and not scratch.distillation.kd  # the recipe of a run without one: no KD
    got = _params(load_checkpoint(run_dir / "scratch" / "model.pt")[0])
    assert not all(torch.equal(got[k], start[k]) for k in start)
    assert "- Start: from scratch." in (run_dir / "scratch" / "card.md").read_text()


@pytest.mark.slow
def test_a_run_without_a_supernet_distills_as_before(runs):
    plain, _ = runs
    assert read_training(plain) is None
    card = distill_run(plain, DistillConfig(**TRAINED))
    assert card.trained_at.start == "from scratch" and card.trained_at.supernet is None
    assert card.teacher is None and not card.distillation.kd
    # --teacher none there is no distillation either, even with --kd
    card = distill_run(plain, DistillConfig(**TRAINED, kd=True, teacher=NO_TEACHER, out="none"))
    assert card.teacher is None and not (plain / "teachers").exists()


@pytest.mark.slow
def test_a_supernet_of_other_data_is_refused_in_one_line(runs, tmp_path):
    _, run_dir = runs
    other = tmp_path / "other"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("winner*", "plain", "alone", "scratch", "*.lock"))
    ctx = open_run(other, download=False)
    # the weights and their record disagree: refused, never a winner from weights nobody recorded
    net = Supernet(ctx.space, ctx.dataset.num_classes, ctx.dataset.in_channels)
    save_supernet(other, net, SupernetTraining(0, 0, 0.0, 0.0, ctx.space.largest().key, []), BUDGET, seed=0)
    record = json.loads((other / "supernet" / "training.json").read_text())
    (other / "supernet" / "training.json").write_text(json.dumps({**record, "digest": "0" * 16}))
    with pytest.raises(DistillError, match="is not the supernet training.json describes"):
        distill_run(other, DistillConfig(**FROZEN))
    net = Supernet(ctx.space, ctx.dataset.num_classes + 1, ctx.dataset.in_channels)
    save_supernet(other, net, SupernetTraining(0, 0, 0.0, 0.0, ctx.space.largest().key, []), BUDGET, seed=0)
    with pytest.raises(DistillError, match=r"supernet has \d+ classes .* the data has"):
        distill_run(other, DistillConfig(**FROZEN))
    assert not (other / "winner").exists()  # refused before any file was made


def test_the_card_and_the_report_say_where_the_start_came_from():
    said = "initialised from the supernet (digest 0123456789abcdef), distilled from its largest member K"
    d = old_card()
    d["trained_at"] = {**d["trained_at"], "start": said, "supernet": "0123456789abcdef"}
    card = WinnerCard.from_json(d)
    assert card.trained_at.supernet == "0123456789abcdef"
    assert f"- Start: {said}." in card.markdown()
    assert WinnerCard.from_json(card.to_json()) == card
    old = WinnerCard.from_json(old_card())  # a card written before: no digest, its start kept
    assert old.trained_at.supernet is None and "- Start: from scratch." in old.markdown()


def test_teacher_none_is_not_a_checkpoint_path():
    cfg = DistillConfig(teacher=NO_TEACHER, kd=True)
    cfg.validate()
    assert cfg.no_teacher and cfg.teacher_checkpoint is None
    assert DistillConfig(teacher="t.pt").teacher_checkpoint == "t.pt"
    assert DistillConfig().inherit  # the supernet is used when the run has one
