"""What a run was made from (nas.run._identity): the space, the device profile and the data are
recorded by absolute path and digest, the profile is copied into the run, a changed input is
refused unless allowed, a run folder can be copied and moved, and --resume extends a run."""

import os
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from conftest import TINY_PROXY, small_builtin
from typer.testing import CliRunner

from nas.api import resume_search, run_search
from nas.cli import app
from nas.errors import RunChangedError, SearchError
from nas.latency import load_device
from nas.report import load_run, regenerate
from nas.run import SearchConfig, open_run, read_run_config
from nas.run._identity import folder_digest
from nas.search import read_trials, status_counts, trial_attrs

optuna.logging.set_verbosity(optuna.logging.WARNING)
PIXEL7 = Path(load_device("pixel7").path)
runner = CliRunner()


def _profile_copy(tmp_path: Path) -> Path:
    """pixel7 as a YAML of the user's own, whose estimator names a table file beside it."""
    raw = yaml.safe_load(PIXEL7.read_text())
    raw["name"] = "myphone"
    raw["table"] = "tables/extra.yaml"
    path = tmp_path / "profiles" / "myphone.yaml"
    (path.parent / "tables").mkdir(parents=True)
    (path.parent / "tables" / "extra.yaml").write_text("{}\n")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory, ray_session):
    """A finished 2-trial run (random sampler, one worker) over a data file and a profile of the
    user's own; tests copy it before changing anything. (tmp, run folder, profile, data)."""
    tmp = tmp_path_factory.mktemp("identity")
    profile = _profile_copy(tmp)
    data = small_builtin(tmp / "data.npz", train_per_class=20, test_per_class=10)
    cfg = SearchConfig(device=str(profile), space="mobilenetv3", trials=2, workers=1, data=str(data),
                       sampler="random", out=str(tmp / "out"), name="r", references=0, proxy=dict(TINY_PROXY),
                       distill=False, seed=3, proxy_kind="train")
    res = run_search(cfg)
    assert res.evaluated + res.failed == 2
    return tmp, res.run_dir, profile, data


def _copy(made, tmp_path: Path, name: str = "copy") -> Path:
    dest = tmp_path / name
    shutil.copytree(made[1], dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


def test_config_records_the_inputs_by_absolute_path_and_digest_and_the_storage_relative(made):
    _, run_dir, profile, data = made
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert raw["storage"] == "sqlite:///study.db"  # relative to the run folder
    assert raw["data_path"] == str(data.resolve()) and raw["data_digest"].startswith("sha256:")
    assert raw["device_path"] == str(profile.resolve())
    assert raw["space_source"].endswith("mobilenetv3.yaml") and len(raw["space_sha256"]) == 64
    assert raw["profile_copy"] == "profile/myphone.yaml"
    assert (run_dir / "profile" / "tables" / "extra.yaml").is_file()  # the table the profile names, too
    _, meta = read_run_config(run_dir)
    assert meta.storage == f"sqlite:///{run_dir / 'study.db'}"


def test_an_edited_profile_does_not_change_what_the_run_prices(made, tmp_path):
    tmp, run_dir, profile, _ = made
    run = _copy(made, tmp_path)
    original = profile.read_text()
    raw = yaml.safe_load(original)
    for k in ("fp32_macs_per_s", "int8_macs_per_s"):
        raw["estimator"]["from_hardware"][k] *= 0.1
    edited = tmp_path / "edited.yaml"  # the edited profile as a fresh name (load_device caches by path)
    try:
        profile.write_text(yaml.safe_dump(raw, sort_keys=False))  # the user edits the profile in place
        shutil.copyfile(profile, profile.parent / edited.name)
        ctx = open_run(run)
        assert ctx.profile.path == run / "profile" / "myphone.yaml"
        study, _, _ = load_run(run)
        for r in read_trials(study):
            cand = ctx.space.parse(r.key)
            assert ctx.latency_ms(cand) == pytest.approx(r.latency_ms)  # what the trials were ranked by
            now = load_device(str(profile.parent / edited.name)).latency_ms(cand, 10, in_channels=1)
            assert now > 1.5 * r.latency_ms
        # the winner's card, trained from the run folder while the profile stays edited
        from nas.winner import DistillConfig, distill_run

        card = distill_run(run, DistillConfig(epochs=0.05, own_side_epochs=0, measure_host=False, tflite=False))
        ranked = next(r for r in read_trials(study) if r.number == card.trial)
        assert card.predicted_latency_ms == pytest.approx(ranked.latency_ms)
    finally:
        profile.write_text(original)
    # the copy itself edited: one line naming it
    copy = run / "profile" / "myphone.yaml"
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(RunChangedError, match="device profile copy .*myphone.yaml changed"):
        open_run(run)


def test_a_changed_data_file_is_refused_unless_allowed(made, tmp_path):
    tmp, _, _, data = made
    run = _copy(made, tmp_path)
    changed = tmp_path / "data.npz"
    shutil.copyfile(data, changed)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data_path"] = str(changed)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert open_run(run).dataset.num_classes == 10  # the same content: accepted
    with np.load(changed) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x_train"] = arrays["x_train"][::-1].copy()
    np.savez(changed, **arrays)
    with pytest.raises(RunChangedError, match=f"the data {changed} changed since the run started"):
        open_run(run)
    for argv in (["distill", str(run), "--epochs", "0.01"], ["export", str(run)]):
        r = runner.invoke(app, argv)
        assert r.exit_code == 2 and "--allow-changed" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert open_run(run, allow_changed=True).dataset.num_classes == 10
    changed.unlink()
    with pytest.raises(SearchError, match=f"the run's data {changed} is gone"):
        open_run(run, allow_changed=True)


def test_a_relative_data_path_is_read_from_where_the_run_found_it(made, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # another folder than the one the run started in
    ctx = open_run(made[1])
    assert ctx.meta.data_path == str(made[3].resolve()) and ctx.dataset.num_classes == 10


def test_an_image_folder_digest_sees_files_added_replaced_or_touched(tmp_path):
    from conftest import png_folder

    root = png_folder(tmp_path / "imgs", n=4, size=8)
    first = folder_digest(root)
    assert folder_digest(root) == first and first.startswith("files:")
    some = next(root.rglob("*.png"))
    st = some.stat()
    os.utime(some, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = folder_digest(root)
    assert touched != first
    (root / "cat" / ".DS_Store").write_bytes(b"x")  # hidden files are not data
    assert folder_digest(root) == touched
    shutil.copyfile(some, some.with_name("new.png"))
    assert folder_digest(root) != touched


def test_a_copied_run_folder_reads_its_own_study_and_a_moved_one_opens(made, tmp_path):
    _, run_dir, _, _ = made
    copy = _copy(made, tmp_path)
    study, meta, _ = load_run(copy)
    assert meta.storage == f"sqlite:///{copy / 'study.db'}"
    before = len(load_run(run_dir)[0].trials)
    t = study.ask()  # a write to the copy's study ...
    study.tell(t, [0.1, 1.0])
    assert len(load_run(run_dir)[0].trials) == before  # ... leaves the original's alone
    assert len(load_run(copy)[0].trials) == before + 1
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    os.rename(copy, moved)
    ctx = open_run(moved)
    assert ctx.run_dir == moved.resolve() and ctx.profile.path == moved / "profile" / "myphone.yaml"
    files = regenerate(moved)
    assert files["report.html"].parent == moved.resolve()


def test_a_run_written_with_an_absolute_storage_still_opens(made, tmp_path):
    old = _copy(made, tmp_path)
    cfg = yaml.safe_load((old / "config.yaml").read_text())
    cfg["storage"] = f"sqlite:///{old / 'study.db'}"
    for k in ("space_sha256", "data_path", "data_digest", "device_path", "profile_copy", "profile_digest"):
        del cfg[k]  # as written before these were recorded
    (old / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    _, meta = read_run_config(old)
    assert meta.storage == f"sqlite:///{old / 'study.db'}"
    ctx = open_run(old)
    assert ctx.profile.name == "myphone" and len(load_run(old)[0].trials) == len(load_run(made[1])[0].trials)


def test_distill_and_export_never_download_cifar10(made, tmp_path, monkeypatch):
    import urllib.request

    def no_network(*a, **k):
        raise AssertionError("downloaded")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "empty-cache"))
    run = _copy(made, tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["config"]["data"] = "cifar10"
    cfg["data_path"] = str(tmp_path / "old-cache" / "datasets" / "cifar-10-python.tar.gz")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(SearchError, match="CIFAR-10 cache .* is gone; nas distill and nas export never download"):
        open_run(run, download=False)
    for argv in (["distill", str(run)], ["export", str(run)]):
        r = runner.invoke(app, argv)
        assert r.exit_code == 2 and "never download" in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("flag", [["--device", "note10"], ["--data", "other"], ["--seed", "1"],
                                  ["--proxy-epochs", "2"], ["--sampler", "tpe"]])
def test_resume_refuses_a_flag_it_cannot_honour(made, flag):
    r = runner.invoke(app, ["search", "--resume", str(made[1]), *flag])
    assert r.exit_code == 2 and f"{flag[0]} cannot change" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_resume_with_more_trials_extends_a_finished_run_with_new_candidates(made, tmp_path):
    run = _copy(made, tmp_path)
    raw = yaml.safe_load((run / "config.yaml").read_text())
    del raw["config"]["proxy_kind"]  # as a run made before --proxy: it resumes with the short proxy
    (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    study, _, _ = load_run(run)
    before = {r.key for r in read_trials(study) if r.status == "evaluated"}
    n_before = len(study.trials)
    c = status_counts(read_trials(study))
    assert c["evaluated"] + c["failed"] + c["duplicate"] == 2
    r = runner.invoke(app, ["search", "--resume", str(run), "--trials", "4", "--workers", "1"])
    assert r.exit_code == 0, r.output
    rows = read_trials(load_run(run)[0])
    c = status_counts(rows)
    assert c["evaluated"] + c["failed"] == 4  # 2 more trained
    new = [x for x in rows if x.status == "evaluated" and x.number >= n_before]
    assert len(new) == 2 and not {x.key for x in new} & before  # the resumed sampler proposed new ones
    assert read_run_config(run)[0].trials == 4  # recorded: a later resume goes on from 4
    assert {trial_attrs(t)["proxy"] for t in load_run(run)[0].trials if t.number >= n_before} == {"train"}
    assert yaml.safe_load((run / "config.yaml").read_text())["config"]["proxy_kind"] == "train"
    assert not (run / "supernet").exists()
    r = runner.invoke(app, ["search", "--resume", str(run)])  # nothing left to do
    assert r.exit_code == 0 and status_counts(read_trials(load_run(run)[0]))["evaluated"] == c["evaluated"]


def test_resume_does_not_count_a_repeat_of_a_candidate_trained_before(made, tmp_path, monkeypatch):
    """A resumed sampler seeded as the first session was re-proposes its candidates: those are
    recorded as duplicates of the earlier trials but not counted, so the resume still trains."""
    from nas.search import _driver

    run = _copy(made, tmp_path)
    first = [r.key for r in read_trials(load_run(run)[0]) if r.status == "evaluated"]
    monkeypatch.setattr(_driver, "resumed_seed", lambda seed, n: seed)  # the first session's seed
    res = resume_search(run, trials=3, workers=1)
    study = load_run(run)[0]
    rows = read_trials(study)
    again = [t for t in study.trials if t.user_attrs.get("info", {}).get("uncounted")]
    assert again and all(t.user_attrs["key"] in first for t in again)
    assert status_counts(rows)["evaluated"] == 3 and res.evaluated == 3


def test_a_builtin_data_run_from_another_install_opens_with_this_installs_file(made, tmp_path):
    """``builtin`` is found where this install ships it, not at the path another install had."""
    from nas.data import BUILTIN
    from nas.run._identity import data_digest

    moved = _copy(made, tmp_path)
    cfg = yaml.safe_load((moved / "config.yaml").read_text())
    cfg["config"]["data"] = "builtin"
    cfg["data_path"] = "/another/site-packages/nas/data/_builtin/fashion_mnist_subset.npz"
    cfg["data_digest"] = data_digest(BUILTIN)
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    ctx = open_run(moved)
    assert ctx.dataset.name == "builtin"
    cfg["data_digest"] = "sha256:" + "0" * 64  # another install shipped other data: refused
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    from nas.errors import RunChangedError

    with pytest.raises(RunChangedError, match="changed since the run started"):
        open_run(moved)
