"""A damaged or foreign study.db, and a run another process holds: one `error:` line and exit 2
from every command that opens the run, and nothing in the folder rewritten."""

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TINY_PROXY
from typer.testing import CliRunner

from nas.cli import app

runner = CliRunner()


@pytest.fixture(scope="session")
def made_run(tmp_path_factory) -> Path:
    """A run folder as `nas search` starts it (config, study, no trials), made without Ray, with
    a trials.csv and a winner card standing in for files a finished run has."""
    import optuna

    from nas.run import RunFolder, SearchConfig, resolve_run, write_run_config
    from nas.search._trials import open_storage

    tmp = tmp_path_factory.mktemp("made")
    ctx = resolve_run(SearchConfig(trials=1, out=str(tmp), name="run", proxy=dict(TINY_PROXY), seed=0,
                                   proxy_kind="train"))
    with RunFolder(ctx.run_dir) as run:
        optuna.create_study(study_name=ctx.meta.study_name, storage=open_storage(ctx.meta.storage),
                            directions=["maximize", "minimize"])
        write_run_config(run.path, ctx.config, ctx.meta)
        run.write("trials.csv", "trial,key\n0,x\n")
        (run.path / "winner").mkdir()
        run.write("winner/card.json", '{"trial": 0}')
    return ctx.run_dir


def _damage(db: Path, how: str) -> None:
    if how == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        db.write_bytes(bytes(range(256)) * 100)
    elif how == "empty":
        db.write_bytes(b"")
    elif how == "foreign":  # another program's SQLite file
        db.unlink()
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
        con.commit()
        con.close()
    elif how == "other-study":  # an Optuna database without this run's study
        con = sqlite3.connect(db)
        con.execute("UPDATE studies SET study_name = 'someone-else'")
        con.commit()
        con.close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock and SQLite's own side files (a reader may create them)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (".lock", "study.db-shm", "study.db-wal")}


REASONS = {"truncated": "malformed", "garbage": "not a database", "empty": "empty",
           "foreign": "without Optuna's tables", "other-study": "holds no study 'run'"}


@pytest.mark.parametrize("command", [["report"], ["search", "--resume"], ["distill"]], ids=" ".join)
@pytest.mark.parametrize("how", list(REASONS))
def test_a_damaged_study_is_one_line_exit_2_and_nothing_is_written(made_run, tmp_path, how, command):
    run = tmp_path / "run"
    shutil.copytree(made_run, run)
    _damage(run / "study.db", how)
    before = _snapshot(run)
    r = runner.invoke(app, [*command, str(run)])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: the study database "), r.output
    assert str(run / "study.db") in " ".join(r.output.split()) and REASONS[how] in r.output
    assert "trials.csv and the winner files are untouched" in " ".join(r.output.split())
    assert _snapshot(run) == before  # study.db, config.yaml, trials.csv, the winner: byte for byte


def test_the_check_accepts_a_study_that_a_search_is_writing(made_run, tmp_path):
    """The check opens the database read-only; a writer holding a transaction does not make it
    look damaged (`nas report` may read while the search writes)."""
    from nas.search import open_study

    run = tmp_path / "run"
    shutil.copytree(made_run, run)
    writer = sqlite3.connect(run / "study.db")
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE studies SET study_name = study_name")
        assert open_study("run", f"sqlite:///{run / 'study.db'}").study_name == "run"
    finally:
        writer.rollback()
        writer.close()


HOLD = textwrap.dedent("""
    import sys, time
    from nas.run import RunFolder
    folder = RunFolder(sys.argv[1])
    folder.lock()
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("command", [["distill"], ["export"]], ids=" ".join)
def test_a_run_another_process_holds_is_in_use_by_its_pid(made_run, tmp_path, command):
    """Not "no trained trial within the budget" (what the trials finished so far would say)."""
    run = tmp_path / "run"
    shutil.copytree(made_run, run)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "held"
        before = _snapshot(run)
        r = runner.invoke(app, [*command, str(run)])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1, r.output
        assert f"in use by another nas process (pid {child.pid})" in " ".join(r.output.split())
        assert _snapshot(run) == before
    finally:
        child.kill()
        child.wait()


def test_distill_of_a_folder_that_is_not_a_run_makes_no_lock_file(tmp_path):
    r = runner.invoke(app, ["distill", str(tmp_path)])
    assert r.exit_code == 2 and "is not a run folder" in r.output
    assert list(tmp_path.iterdir()) == []
