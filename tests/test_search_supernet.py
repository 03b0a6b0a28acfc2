"""`nas search --proxy supernet` end to end: the supernet trained once on Ray, every trial and
reference scored from it (recorded: which proxy, which supernet), the report saying so, a
resume that reuses the trained supernet, and the refusals."""

import json
from dataclasses import asdict

import pytest
from typer.testing import CliRunner

from nas.api import resume_search, run_search
from nas.cli import app
from nas.run import SearchConfig
from nas.search import read_trials, trial_attrs
from nas.search._trials import open_study
from nas.supernet import read_training

# member_limit off its default: the search must take it from the run's budget (the log, the largest member)
TINY_SUPERNET = {"epochs": 1.0, "max_train_images": 128, "batch_size": 32, "random_members": 1, "member_limit": 1.2}
TINY_SCORE = {"max_val_images": 100, "bn_recalibration_batches": 1}


@pytest.fixture(scope="module")
def sn_run(tmp_path_factory, ray_session):
    tmp = tmp_path_factory.mktemp("snrun")
    cfg = SearchConfig(device="pixel7", space="mobilenetv3", trials=4, workers=2, data="builtin", out=str(tmp),
                       name="run", references=1, proxy=dict(TINY_SCORE), seed=0, proxy_kind="supernet",
                       supernet=dict(TINY_SUPERNET), distill=False)
    return tmp / "run", run_search(cfg)


def test_trials_are_scored_from_the_supernet(sn_run):
    run, res = sn_run
    rec = read_training(run)
    assert rec is not None and rec["training"]["steps"] == 4  # 128 images / 32 per step, 1 epoch
    from nas.run import open_run
    from nas.space import parse_candidate

    ctx = open_run(run)
    assert f"members within {1.2 * ctx.budget_ms:.2f} ms" in (run / "search.log").read_text()
    largest = ctx.latency_ms(parse_candidate(rec["training"]["largest"], ctx.space))
    assert largest <= 1.2 * ctx.budget_ms  # the largest member is bounded by the limit
    assert not (run / "supernet" / "checkpoint.pt").exists()  # removed once the weights are saved
    study = open_study(res.study_name, res.storage)
    assert study.user_attrs["supernet"]["digest"] == rec["digest"]
    scored = [t for t in study.get_trials() if t.user_attrs.get("status") == "evaluated"]
    assert scored and res.evaluated == len(scored)
    for t in scored:
        info = trial_attrs(t)
        assert info["proxy"] == "supernet" and info["supernet"] == rec["digest"]
        assert info["train_seconds"] == 0 and info["steps"] == 0  # scored, not trained
        assert 0 <= t.values[0] <= 1
    refs = study.user_attrs["references"]
    assert refs and refs[0]["accuracy"] is not None
    page = (run / "report.html").read_text()
    assert "inherited-weight accuracy" in page and rec["digest"] in page


def test_resume_reuses_the_trained_supernet(sn_run):
    run, res = sn_run
    before = read_training(run)
    res2 = resume_search(run, trials=6)
    assert read_training(run)["digest"] == before["digest"]
    assert "supernet: found trained" in (run / "search.log").read_text()
    assert res2.evaluated + res2.failed >= 6 - sum(1 for r in read_trials(open_study(res2.study_name, res2.storage))
                                                   if r.status == "duplicate")


def test_halving_needs_the_training_proxy(tmp_path):
    r = CliRunner().invoke(app, ["search", "--proxy", "supernet", "--fidelity", "halving", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "needs --proxy train" in r.output and "Traceback" not in r.output


def test_bad_proxy_and_supernet_epochs_are_one_line(tmp_path):
    r = CliRunner().invoke(app, ["search", "--proxy", "magic", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--proxy must be one of supernet, train" in r.output
    r = CliRunner().invoke(app, ["search", "--proxy", "supernet", "--supernet-epochs", "0", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--supernet-epochs must be more than 0" in r.output
    for bad in ("0.5", "nan"):
        r = CliRunner().invoke(app, ["search", "--proxy", "supernet", "--supernet-limit", bad, "--out", str(tmp_path)])
        assert r.exit_code == 2 and "--supernet-limit must be at least 1" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert not any(tmp_path.iterdir())


def test_the_member_limit_is_part_of_the_supernets_identity_off_its_default():
    from nas.supernet import SupernetBudget

    # at 1.5 the digest is the one supernets trained before the limit was a setting carry
    assert SupernetBudget().digest() == "031e2ec5e425"
    assert SupernetBudget(member_limit=1.0).digest() != SupernetBudget().digest()
    assert SearchConfig(supernet={"member_limit": 1.0}).supernet_budget().member_limit == 1.0
    assert SupernetBudget(member_limit=1).digest() == SupernetBudget(member_limit=1.0).digest()  # YAML's 1
    # a supernet trained before the limit was a setting (its record has no member_limit) is reused, not retrained
    before = {k: v for k, v in asdict(SupernetBudget()).items() if k != "member_limit"}
    assert SupernetBudget().matches(before) and not SupernetBudget(member_limit=1.0).matches(before)
    assert not SupernetBudget().matches({**before, "unknown": 1}) and not SupernetBudget().matches(None)


def test_config_records_the_proxy(sn_run):
    run, _ = sn_run
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())["config"]
    assert cfg["proxy_kind"] == "supernet" and cfg["supernet"]["epochs"] == 1.0
    json.dumps(cfg)
