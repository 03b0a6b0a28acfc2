"""The trial record: what a trial stores in the study and how a run's trials are read back.

The Optuna study (SQLite in the run folder, or ``--storage``) is the record of truth. Each
trial carries as user attributes: ``key`` (the candidate), ``latency_ms``, ``status`` (one of
``STATUSES``), ``accuracy`` once trained, ``reason`` when it failed, and one ``info`` mapping
with the secondary facts (one attribute is one SQLite transaction, so they travel together).
A trial left RUNNING, or FAIL without a status, was cut off by a stopped driver: it is
*interrupted* and runs again on resume.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from nas.errors import CandidateError, ReportError, SearchError, StudyDamagedError
from nas.search._halving import RUNGS_ATTR
from nas.space import Candidate

__all__ = ["STATUSES", "TrialRow", "trial_attrs", "trial_row", "rows_for_device", "read_trials", "status_counts",
           "open_storage", "open_study", "set_constraints", "constraints_of", "CONSTRAINT_NAMES_ATTR",
           "bit_counts", "bits_summary", "keep_summary", "OVER_BUDGET_ATTR", "DASHBOARD_NOTE", "over_budget_attr",
           "mark_over_budget", "write_dashboard_note"]

CONSTRAINT_NAMES_ATTR = "constraint_names"  # study user attribute: what each constraint value is


def set_constraints(trial, names: list[str], values: list[float]) -> None:
    """Record an asked trial's constraint values (feasible when all are <= 0), in ``names`` order
    (``SearchConfig.constraint_names()``, kept in the study's ``CONSTRAINT_NAMES_ATTR``), as the
    one list under the trial's system attribute "constraints". That list is what Optuna itself
    writes for a sampler's ``constraints_func`` and what Optuna 5's TPE and NSGA-II read (as
    ``FrozenTrial.constraints`` "0", "1", ...), and the only form optuna-dashboard 0.21 reads:
    it draws a trial with a positive value grey, as an "Infeasible Trial", so an over-budget
    trial's placeholder accuracy 0.0 is not plotted as a measurement (issue 25). Optuna 5's named
    ``Trial.set_constraint`` gives the samplers the same values (a test compares their proposals)
    but the dashboard does not see them: runs written with it keep them (``constraints_of``)."""
    if len(names) != len(values):
        raise SearchError(f"{len(values)} constraint values for {len(names)} names ({', '.join(names)})")
    trial.storage.set_trial_system_attr(trial._trial_id, "constraints", [float(v) for v in values])


def constraints_of(trial, names: list[str]) -> dict[str, float]:
    """A frozen trial's constraints by name (``names``: the study's CONSTRAINT_NAMES_ATTR): the
    unnamed list ``set_constraints`` writes, in ``names`` order, or the named ones of a run
    written with Optuna 5's ``Trial.set_constraint`` (hwnas before issue 25's dashboard fix)."""
    cons = trial.constraints
    if any(n in cons for n in names):
        return {n: cons[n] for n in names if n in cons}
    return dict(zip(names, trial.system_attrs.get("constraints", [])))

# An over-budget trial is told COMPLETE with accuracy 0.0 and its violated constraints: NSGA-II
# builds its populations from COMPLETE trials only, and TPE ranks infeasible COMPLETE trials by how
# far over the budget they are (their objective values are never read), so FAIL or PRUNED would
# change what both samplers learn. The 0.0 is a placeholder, never a measurement: optuna-dashboard
# draws the trial grey as infeasible (its constraint list, ``set_constraints``), its trial table
# still lists the 0.0, so the trial says so in a user attribute (OVER_BUDGET_ATTR, a column of that
# table and of ``study.trials_dataframe()``) and the study in a dashboard note (DASHBOARD_NOTE).
OVER_BUDGET_ATTR = "over_budget"
DASHBOARD_NOTE = (
    "**Over-budget trials were not trained.** A candidate over the latency budget (or over "
    "--memory-kb / --size-kb) is told to Optuna at once, COMPLETE, with the constraint it violates "
    "and **accuracy 0.0 as a placeholder**: TPE and NSGA-II rank it below every feasible trial by "
    "how far over it is, and never read its objective values. The plots draw such trials grey, as "
    "*Infeasible Trial*; the trial table lists their 0.0, and their user attributes "
    "`status: over_budget` and `over_budget` (why, and that the 0.0 is not a measurement): filter "
    "the table on them. The run's report.html and trials.csv keep them off the front.")


def over_budget_attr(over: list[str]) -> str:
    """The ``OVER_BUDGET_ATTR`` value of a trial over ``over`` (["latency 3.10 ms > 2.50 ms", ...])."""
    return f"not trained ({'; '.join(over)}): its accuracy 0.0 is a placeholder, not a measurement"


def mark_over_budget(trial, over: list[str]) -> None:
    """Record on an asked trial why it is over budget and that it is not trained."""
    trial.set_user_attr("status", "over_budget")
    trial.set_user_attr(OVER_BUDGET_ATTR, over_budget_attr(over))


def write_dashboard_note(study) -> bool:
    """The study's note in optuna-dashboard (``DASHBOARD_NOTE``), where that optional package is
    installed (its ``save_note`` is the format the dashboard reads); False where it is not."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return False
    save_note(study, DASHBOARD_NOTE)
    return True


STATUSES = ("evaluated", "duplicate", "over_budget", "failed", "interrupted", "running")


def trial_attrs(t) -> dict:
    """A trial's user attributes with its "info" bundle flattened in, in today's names (a study
    written by an older version is read through ``_upgrade``)."""
    a = dict(t.user_attrs)
    return _upgrade({**a.pop("info", {}), **a})


def _upgrade(a: dict) -> dict:
    """The one place older trial records are mapped to today's attribute names: runs before
    0.1.1 stored the proxy's input side as "resolution" (now "proxy_side")."""
    if "proxy_side" not in a and "resolution" in a:
        a = {**a, "proxy_side": a.pop("resolution")}
    return a


@lru_cache(maxsize=4096)  # read_trials runs every second during a search
def own_side(key: str) -> int | None:
    """The candidate's own input side (what is priced and shipped), read with the candidate
    key grammar; None for a trial without a readable key (killed while being asked)."""
    try:
        return Candidate.parse(key).resolution if key else None
    except CandidateError:
        return None


class TrialRow(NamedTuple):
    number: int
    state: str  # Optuna state: COMPLETE, FAIL, RUNNING, WAITING
    status: str  # one of STATUSES
    key: str
    accuracy: float | None
    latency_ms: float | None
    macs: int | None
    params: int | None
    bytes: int | None
    bits: str
    keep: str
    resolution: int | None  # the candidate's own input side (what is priced and shipped)
    proxy_seconds: float | None
    node: str  # the Ray node it trained on (first 12 characters of its id)
    reason: str
    proxy_side: int | None = None  # the input side the short proxy trained it at
    host: str = ""
    rung: int = 0  # the highest rung of successive halving it finished (0: the base budget)
    rung_accuracy: tuple = ()  # proxy accuracy at each rung, None where that rung failed
    memory: int | None = None  # peak bytes at batch 1, activations + weights (nas.space._memory)
    # several devices: {profile name: predicted ms}; ``latency_ms`` is the first device's. None on one device
    latencies: dict | None = None

    @property
    def trained(self) -> bool:
        return self.status in ("evaluated", "duplicate") and self.accuracy is not None


def trial_row(t, rungs: list[dict] | None = None) -> TrialRow:
    """``rungs``: the trial's results above rung 0 (``nas.search._halving``); its accuracy is then the
    one at its highest finished rung."""
    a = trial_attrs(t)
    if a.get("interrupted") or (t.state.name == "FAIL" and "status" not in a):
        status = "interrupted"  # stopped by Ctrl-C or a killed driver; runs again on --resume
    elif t.state.name in ("RUNNING", "WAITING"):
        status = "running"
    else:
        status = a.get("status") or "failed"
    key = a.get("key", "")
    acc, rung, per_rung = a.get("accuracy"), 0, ()
    if acc is not None and status == "evaluated":
        per_rung = [acc]
        for r in sorted(rungs or [], key=lambda r: r["rung"]):
            at_rung = r.get("accuracy") if r.get("status") == "evaluated" else None
            per_rung += [None] * (int(r["rung"]) - len(per_rung)) + [at_rung]
            if r.get("status") == "evaluated":
                acc, rung = r["accuracy"], int(r["rung"])
        per_rung = tuple(per_rung)
    return TrialRow(t.number, t.state.name, status, key, acc,
                    a.get("latency_ms"), a.get("macs"), a.get("params"), a.get("bytes"),
                    a.get("bits", ""), a.get("keep", ""), own_side(key), a.get("proxy_seconds"),
                    str(a.get("node", ""))[:12], a.get("reason", a.get("over", "")), a.get("proxy_side"),
                    a.get("host", ""), rung, per_rung, a.get("memory"), a.get("latencies_ms"))


def rows_for_device(rows: list[TrialRow], device: str | None) -> list[TrialRow]:
    """The trials as seen from one device of a run on several: ``latency_ms`` is that device's
    prediction (so ``pareto_front``, ``best_trial`` and the pick rules work per device at its
    budget). ``device`` None, or a run on one device: the rows as they are."""
    if device is None:
        return rows
    return [r._replace(latency_ms=r.latencies.get(device)) if r.latencies else r for r in rows]


def read_trials(study) -> list[TrialRow]:
    rungs = {k: v for k, v in study.user_attrs.items() if k.startswith(RUNGS_ATTR)}
    return [trial_row(t, rungs.get(f"{RUNGS_ATTR}{t.number}")) for t in study.get_trials(deepcopy=False)]


def status_counts(rows: list[TrialRow]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for r in rows:
        counts[r.status] += 1
    return counts


def open_storage(url: str):
    """Optuna's RDB storage; SQLite in write-ahead-log mode with a generous busy timeout."""
    import optuna

    if url.startswith("sqlite:"):
        from sqlalchemy import event

        # a generous busy timeout: `nas report` may read while the search writes
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})

        @event.listens_for(storage.engine, "connect")
        def _wal(dbapi_conn, _record) -> None:
            # Write-ahead log + synchronous=NORMAL: a commit no longer waits for a full fsync
            # (ask + suggest + tell of a candidate: 154 -> 55 ms here; Optuna writes every
            # sampled parameter in its own transaction). A killed process loses nothing; a
            # power cut may lose the last commits, never the database.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        storage.engine.dispose()  # connections opened while creating the schema take the pragmas too
        return storage
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # sqlalchemy raises many kinds for a bad URL
        raise SearchError(f"cannot open storage {url!r}: {str(exc).splitlines()[0]}") from None


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or an in-memory one)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


def _sqlite_problem(path: Path) -> str | None:
    """Why the SQLite file ``path`` cannot hold Optuna studies (None: it can), found without
    writing to it: opened read-only, SQLite's quick integrity check, Optuna's tables present."""
    import sqlite3

    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            check = con.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        return str(exc)
    if check is None or check[0] != "ok":
        return f"database disk image is malformed: {check[0] if check else 'no integrity check result'}"
    if not {"studies", "trials", "version_info"} <= tables:
        return "a SQLite file without Optuna's tables"
    return None


def open_study(study_name: str, storage: str, sampler: Any = None):
    """The run's study. ReportError when its database is missing; ``StudyDamagedError`` when
    the database is damaged, foreign or holds no such study (checked before Optuna opens it:
    Optuna would add its tables to a foreign SQLite file)."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    path = _sqlite_path(storage)
    if path is not None and not path.is_file():
        raise ReportError(f"the study database {path} is missing")
    where = path if path is not None else storage
    problem = _sqlite_problem(path) if path is not None else None
    if problem:
        raise StudyDamagedError(where, problem)
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(storage), sampler=sampler)
    except KeyError:
        raise StudyDamagedError(where, f"it holds no study {study_name!r}") from None
    except (SQLAlchemyError, RuntimeError) as exc:  # damage SQLite finds late; a schema of another Optuna
        raise StudyDamagedError(where, str(exc).strip().splitlines()[0]) from None


# ----------------------------------------------------------------------------- a candidate as the record shows it

def bit_counts(cand: Candidate) -> tuple[tuple[int, int], ...]:
    """((bit width, blocks at it), ...) by width: what the card states of a candidate's quantization."""
    bits = [b.bits for b in cand.blocks]
    return tuple((b, bits.count(b)) for b in sorted(set(bits)))


def bits_summary(cand: Candidate) -> str:
    """The trial record's display form of ``bit_counts`` ("8:3,32:2"): shown, never parsed back."""
    return ",".join(f"{b}:{n}" for b, n in bit_counts(cand))


def keep_summary(cand: Candidate) -> str:
    keeps = [b.keep for b in cand.blocks]
    return f"{min(keeps):g}-{max(keeps):g} (mean {sum(keeps) / len(keeps):.2f})"
