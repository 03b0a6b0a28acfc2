"""The search driver: an Optuna multi-objective study, candidates evaluated by Ray workers.

The driver asks the study for a trial, turns it into a Candidate (``SearchSpace.suggest``),
prices it on the device profile and, when it fits the latency budget, submits a Ray task that
trains it briefly (``nas.search._worker``); it keeps ``workers`` tasks in flight and tells the study
each result as it arrives (ask/tell). Candidates over the budget are told at once (accuracy 0,
constraint violated) and cost no worker time; a candidate seen before reuses its result. The
study is the record of truth (``nas.search._trials``); every file beside it is derived from it
by observers (``SearchObserver``: the report subscribes, ``nas.api`` wires it) and can be
regenerated.

``trials`` counts trained trials only: ``trials=N`` trains N candidates (failures included).
Over-budget candidates are recorded but not counted; a repeated candidate reuses its result and
counts, except in a resumed search when it was trained before the resume (the resumed sampler,
seeded anew, should find new candidates: ``trials`` above the finished count extends a run); at most
``OVER_BUDGET_FACTOR * N`` over-budget candidates are drawn before the search gives up. A
search whose every trained trial failed raises ``SearchError`` (after writing its report).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import TrialState

from nas.errors import BudgetError, SearchError, SearchInterrupted
from nas.run import (
    RunContext,
    RunFolder,
    SearchConfig,
    open_run,
    prepare_proxy_sides,
    read_run_config,
    record_inputs,
    resolve_run,
    write_run_config,
)
from nas.search._events import RunView, SearchObserver
from nas.search._front import best_trial, pareto_front
from nas.search._halving import Ladder, Promotion
from nas.search._sampler import make_sampler
from nas.search._sampler import objective_values as _values
from nas.search._trials import (
    CONSTRAINT_NAMES_ATTR,
    bits_summary,
    keep_summary,
    mark_over_budget,
    open_storage,
    open_study,
    read_trials,
    rows_for_device,
    set_constraints,
    status_counts,
    trial_attrs,
    write_dashboard_note,
)
from nas.search._worker import RayPool, WorkerResult, candidate_size, one_line
from nas.space import Candidate, memory_bytes
from nas.train import ProxyResult

__all__ = ["SearchProgress", "SearchResult", "run_search", "resume_search"]

OVER_BUDGET_FACTOR = 20
TABLES_EVERY_S = 5.0


@dataclass
class SearchProgress:
    done: int  # trained trials finished (failures included)
    total: int
    running: int
    over_budget: int
    failed: int
    best_accuracy: float | None  # best proxy accuracy within the budget
    best_key: str | None
    elapsed_s: float
    eta_s: float | None
    message: str = ""
    promoted: int = 0  # halving: rung tasks finished (promotions; not counted in ``done``)
    phase: tuple[str, int, int, str] | None = None  # work before the trials: (what, done, total, unit)


@dataclass
class SearchResult:
    run_dir: Path
    study_name: str
    storage: str
    budget_ms: float
    trials: int
    evaluated: int
    failed: int
    over_budget: int
    best_accuracy: float | None
    best_key: str | None
    files: dict[str, Path]
    seconds: float
    driver_ms: dict[str, float] = field(default_factory=dict)  # medians per trained trial
    context: RunContext | None = field(default=None, repr=False)
    # several devices: {profile name: (best accuracy, its key)} at that device's budget; {} on one device
    best_by_device: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)


def resumed_seed(seed: int, trials_so_far: int) -> int:
    """The sampler's seed when a run resumes with ``trials_so_far`` trials in its study: derived
    from both, so that a resume neither repeats the first session's proposals nor depends on
    anything but the study (the same resume of the same run proposes the same candidates)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


@dataclass(frozen=True)
class TrialTask:
    """A new candidate in training: its Optuna trial, the candidate and the facts told with it."""

    trial: optuna.Trial
    candidate: Candidate
    info: dict[str, Any]


Task = TrialTask | Promotion  # what a pending Ray task trains: a new trial, or a promotion (halving)


def latency_steer(ctx: RunContext, latency: float | dict[str, float]) -> tuple[list[float], Any, list[str]]:
    """What the sampler is told of a candidate's latency: (its latency constraint values, its
    latency objective value(s), why it is over budget: empty when it is trained).

    One device: ``latency`` in ms; the constraint is ms over the budget, the objective the ms.
    Several (``latency``: {profile name: ms}), each latency divided by its device's budget
    (``r``): a candidate is trained when it meets any device's budget. ``steer`` constraints: one
    constraint per device, ``r - 1``, and one objective, the largest ``r`` (the sampler is drawn
    to candidates within every budget, and along the tightest one); ``steer`` objectives: one
    objective ``r`` per device and one constraint, the smallest ``r - 1`` (within some budget)."""
    if not isinstance(latency, dict):
        over = [f"latency {latency:.2f} ms > {ctx.budget_ms:.2f} ms"] if latency > ctx.budget_ms else []
        return [latency - ctx.budget_ms], latency, over
    ratio = [latency[t.name] / t.budget_ms for t in ctx.devices]
    over = []
    if min(ratio) > 1:
        over = ["latency over every device's budget: " +
                ", ".join(f"{t.name} {latency[t.name]:.2f} ms > {t.budget_ms:.2f} ms" for t in ctx.devices)]
    if ctx.config.steer == "constraints":
        return [r - 1 for r in ratio], max(ratio), over
    return [min(ratio) - 1], ratio, over


def _median(xs: list[float]) -> float:
    return float(sorted(xs)[len(xs) // 2]) if xs else float("nan")


class _Search:
    def __init__(self, ctx: RunContext, run: RunFolder, progress: Callable[[SearchProgress], None] | None,
                 observers: Sequence[SearchObserver] = (), resume: bool = False):
        self.ctx, self.run, self.config = ctx, run, ctx.config
        self.observers = tuple(observers)
        self.progress = progress or (lambda p: None)
        self.study = open_study(ctx.meta.study_name, ctx.meta.storage,
                                sampler=make_sampler(self.config.sampler, self.config.seed, self.config.trials))
        self.resumed = resume
        if resume:  # the first seed would propose again what the run proposed first
            self.study.sampler = make_sampler(self.config.sampler,
                                              resumed_seed(self.config.seed, len(self.study.get_trials(deepcopy=False))),
                                              self.config.trials)
        # duplicates of candidates trained before a resume: recorded, not counted (bounded)
        self.uncounted = sum(1 for t in self.study.get_trials(deepcopy=False)
                             if t.user_attrs.get("info", {}).get("uncounted"))
        self.earlier: set[str] = set()  # keys trained before this resume
        self.t0 = time.perf_counter()
        self.worker_seconds: list[float] = []
        self.ask_ms: dict[int, float] = {}  # driver time per trial: ask, suggest, price, submit
        self.tell_ms: dict[int, float] = {}  # result to study, derived files refreshed
        self._tables_at = -1e9
        self.ladder = Ladder(self.study, run.path, self.config.ladder(), self.config.rank_by,
                             self.config.promote) \
            if self.config.fidelity == "halving" else None
        self.promoted = 0
        self.supernet_digest = ""  # the supernet's that scores trials (--proxy supernet)

    # ---- reading the study
    def counts(self) -> dict[str, int]:
        return status_counts(read_trials(self.study))

    def counted(self, c: dict[str, int]) -> int:
        """Trials counted against ``trials``: trained, failed, and the duplicates that count."""
        return c["evaluated"] + c["failed"] + c["duplicate"] - self.uncounted

    def best(self, rows: list | None = None) -> tuple[float | None, str | None]:
        """The trial ``best_trial`` names (the winner's default ``--pick best``), so the summary
        and the winner agree."""
        r = best_trial(read_trials(self.study) if rows is None else rows, self.ctx.budget_ms)
        return (None, None) if r is None else (r.accuracy, r.key)

    def _known_results(self) -> dict[str, Any]:
        known = {}
        for t in self.study.get_trials(deepcopy=False):
            if t.user_attrs.get("status") == "evaluated" and t.values is not None:
                known.setdefault(t.user_attrs["key"], t)
        return known

    # ---- resume bookkeeping
    def requeue_interrupted(self) -> int:
        """Trials left RUNNING by a killed driver are failed (they then read as interrupted,
        ``nas.search._trials``); those and the ones interrupted by Ctrl-C are enqueued again with the
        same parameters."""
        trials = self.study.get_trials(deepcopy=False)
        rerun = {t.user_attrs.get("rerun_of") for t in trials}
        n = 0
        for t in trials:
            if t.state == TrialState.RUNNING:  # its driver was killed: finish it as failed
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            elif not (t.state == TrialState.FAIL and (t.user_attrs.get("interrupted") or "status" not in t.user_attrs)):
                continue
            if t.number in rerun or "key" not in t.user_attrs:  # killed while being asked: never ran
                continue
            self.study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number})
            n += 1
        return n

    # ---- the supernet (--proxy supernet)
    def prepare_supernet(self, pool: RayPool) -> None:
        """Train the run's supernet once (or find it trained, or continue its checkpoint after
        a kill) on the candidates within ``member_limit`` x the latency budget, then let the
        pool score candidates from it. Recorded in the study (``supernet``: digest, budget,
        steps, seconds, largest member)."""
        from nas.supernet import read_training, train_on_ray

        ctx, cfg = self.ctx, self.config
        budget = cfg.supernet_budget()
        factor = budget.member_limit
        limit = factor * ctx.budget_ms

        def allow(c: Candidate) -> bool:  # several devices: within the limit on any of them
            return any(ctx.latency_on(t, c) <= factor * t.budget_ms for t in ctx.devices)

        had = read_training(self.run.path)
        self.run.log("supernet: " + ("found trained" if had else
                                     f"training ({budget.epochs:g} epochs of {budget.max_train_images} images, "
                                     f"members within {limit:.2f} ms" + (
                                         f" on {ctx.profile.name}, or {factor:g}x the budget on another "
                                         f"device" if ctx.multi else "") + ")"))
        t0 = time.perf_counter()

        def step(done: int, total: int, seconds: float) -> None:
            left = seconds / max(1, done) * (total - done)
            per_epoch = total / budget.epochs
            p = self._progress(0, f"epoch {min(budget.epochs, done / per_epoch + 1):.0f}/{budget.epochs:g}, "
                                  f"~{left / 60:.1f} min left")
            p.phase = ("training the supernet", done, total, "steps")
            self.progress(p)

        workers = cfg.supernet_workers
        net, record = train_on_ray(ctx.space, ctx.dataset, budget, cfg.seed, self.run.path, allow=allow,
                                   workers=workers, threads=max(1, cfg.workers * ctx.proxy.threads // workers),
                                   device=ctx.proxy.device, progress=step)
        pool.use_supernet(net.to("cpu").to_bytes(), record["digest"])
        self.supernet_digest = record["digest"]
        tr = record.get("training", {})
        self.study.set_user_attr("supernet", {"digest": record["digest"], "budget": record.get("budget"),
                                              "steps": tr.get("steps"), "seconds": tr.get("seconds"),
                                              "largest": tr.get("largest"), "limit_ms": limit})
        self.run.log(f"supernet {record['digest']}: {tr.get('steps')} steps, largest member {tr.get('largest')} "
                     f"({time.perf_counter() - t0:.0f} s here)")

    # ---- references
    def evaluate_references(self, pool: RayPool) -> None:
        """Train up to ``config.references`` reference networks of the space (the nearest to the
        budget in predicted latency) with the same proxy; stored as a study user attribute."""
        ctx = self.ctx
        if self.config.references == 0:
            return
        done = {r["name"]: r for r in self.study.user_attrs.get("references", [])}
        rows = sorted((min(abs(math.log(ctx.latency_on(t, ctx.space.reference(n)) / t.budget_ms))
                           for t in ctx.devices), n)
                      for n in ctx.space.references())
        todo = [n for _, n in rows[:self.config.references] if n not in done]
        if not todo:
            return
        verb = "scoring" if self.supernet_digest else "training"
        self.run.log(f"{verb} {len(todo)} reference network(s) with the same proxy: " + ", ".join(todo))
        refs = {}
        for name in todo:
            cand = ctx.space.reference(name)
            refs[pool.submit(cand, self.data_ref, self.config.seed, ctx.proxy, ctx.proxy_side(cand))] = (name, cand)
        pending = list(refs)
        while pending:
            self.progress(self._progress(0, f"{verb} reference networks ({len(refs) - len(pending)}/{len(refs)})"))
            ready, pending = pool.ray.wait(pending, num_returns=1, timeout=1.0)
            for r in ready:
                name, cand = refs[r]
                row = {"name": name, "key": cand.key, "latency_ms": ctx.latency_ms(cand),
                       "macs": sum(op.macs for op in cand.ops(num_classes=ctx.num_classes))}
                if ctx.multi:
                    row["latencies_ms"] = {t.name: ctx.latency_on(t, cand) for t in ctx.devices}
                try:
                    out: WorkerResult = pool.ray.get(r)
                    row.update(accuracy=None if out.failed else out.proxy.accuracy, params=out.params,
                               bytes=out.bytes, failed=out.failed, reason=out.proxy.reason,
                               seconds=out.proxy.seconds)
                except Exception as exc:
                    row.update(accuracy=None, failed=True, reason=one_line(exc))
                done[name] = row
                self.study.set_user_attr("references", list(done.values()))
                self.run.log(f"reference {name}: accuracy {row.get('accuracy')} latency {row['latency_ms']:.2f} ms")

    # ---- progress
    def _progress(self, running: int, message: str = "") -> SearchProgress:
        rows = read_trials(self.study)  # once per refresh: the loop calls this every second
        c = status_counts(rows)
        done = self.counted(c)
        best = self.best(rows)
        eta = None
        if self.worker_seconds and done < self.config.trials:
            eta = _median(self.worker_seconds) * (self.config.trials - done) / self.config.workers
        return SearchProgress(done, self.config.trials, running, c["over_budget"], c["failed"],
                              best[0], best[1], time.perf_counter() - self.t0, eta, message, self.promoted)

    # ---- the loop
    def _ask(self, pool: RayPool, known: dict, pending: dict) -> str:
        """Ask for one trial and dispatch it: 'over' (told at once), 'duplicate' (told from a
        known result) or 'submitted' (a Ray task)."""
        ctx, cfg = self.ctx, self.config
        t_ask = time.perf_counter()
        trial = self.study.ask()
        cand = ctx.space.suggest(trial)
        lat = ctx.latency_ms(cand)
        lats = {t.name: ctx.latency_on(t, cand) for t in ctx.devices} if ctx.multi else None
        macs = sum(op.macs for op in cand.ops(num_classes=ctx.num_classes))
        # few writes: each user attribute is one SQLite transaction (~4 ms here), so the
        # secondary facts travel in one "info" dict (read back by trial_attrs)
        info = {"latency_provenance": ctx.profile.provenance, "device": ctx.profile.label,
                "macs": macs, "bits": bits_summary(cand), "keep": keep_summary(cand), "proxy": cfg.proxy_kind}
        if lats is not None:
            info["latency_provenances"] = {t.name: t.profile.provenance for t in ctx.devices}
        if self.supernet_digest:
            info["supernet"] = self.supernet_digest
        trial.set_user_attr("key", cand.key)
        trial.set_user_attr("latency_ms", lat)
        if lats is not None:
            trial.set_user_attr("latencies_ms", lats)
        cons, lat_obj, over = latency_steer(ctx, lat if lats is None else lats)
        sized = cfg.memory_kb is not None or cfg.size_kb is not None or over
        if sized:  # size and memory need the built module (~25 ms): only when they decide
            params, nbytes = candidate_size(cand, ctx.num_classes, ctx.dataset.in_channels)
            mem = memory_bytes(cand, nbytes, ctx.num_classes, ctx.dataset.in_channels)
            info.update(params=params, bytes=nbytes, memory=mem)
            for name, budget, value in (("size", cfg.size_kb, nbytes), ("memory", cfg.memory_kb, mem)):
                if budget is not None:
                    cons.append(value / 1024 - budget)
                    if value / 1024 > budget:
                        over.append(f"{name} {value / 1024:.0f} KB > {budget:g} KB")
        set_constraints(trial, cfg.constraint_names(ctx.device_names()), cons)
        if over:
            trial.set_user_attr("info", {**info, "over": "; ".join(over)})
            mark_over_budget(trial, over)  # the 0.0 told below is a placeholder (nas.search._trials)
            self.study.tell(trial, _values(cfg.objectives, 0.0, lat_obj, info["bytes"], info["memory"]))
            return "over"
        if cand.key in known:
            prev = trial_attrs(known[cand.key])
            again = cand.key in self.earlier  # trained before this resume: not counted
            trial.set_user_attr("info", {**info, **{k: prev[k] for k in ("params", "bytes", "memory", "proxy_seconds")
                                                    if k in prev}, "duplicate_of": known[cand.key].number,
                                         **({"uncounted": True} if again else {})})
            trial.set_user_attr("accuracy", prev["accuracy"])
            trial.set_user_attr("status", "duplicate")
            self.study.tell(trial, _values(cfg.objectives, prev["accuracy"], lat_obj, prev.get("bytes", 0),
                                           prev.get("memory", 0)))
            if again:
                self.uncounted += 1
                return "repeat"
            return "duplicate"
        ref = pool.submit(cand, self.data_ref, cfg.seed, ctx.proxy, ctx.proxy_side(cand),
                          keep_state=self.ladder is not None)
        self.ask_ms[trial.number] = (time.perf_counter() - t_ask) * 1e3
        pending[ref] = TrialTask(trial, cand, info)
        return "submitted"

    def _promote(self, pool: RayPool, pending: dict[Any, Task]) -> bool:
        """Submit the ladder's next due promotion (halving); False when none is due."""
        assert self.ladder is not None
        task = self.ladder.next_task(self.ctx.proxy)
        if task is None:
            return False
        cand = self.ctx.space.parse(task.key)
        ref = pool.submit(cand, self.data_ref, self.config.seed + 1000 * task.rung, task.budget,
                          self.ctx.proxy_side(cand), start=task.start,
                          keep_state=True)  # the top rung's weights: the winner's start
        pending[ref] = task
        return True

    def _collect_rung(self, pool: RayPool, ref, task: Promotion) -> None:
        assert self.ladder is not None
        try:
            result: ProxyResult | str = pool.ray.get(ref).proxy
        except Exception as exc:  # the task raised, or its worker died
            result = one_line(exc)
        if not isinstance(result, str):
            self.worker_seconds.append(self.ladder.base_seconds(task, result.seconds))
        self.run.log(self.ladder.finish(task, result))
        self.promoted += 1
        self.on_trial()

    def _collect(self, pool: RayPool, ref, task: TrialTask, known: dict) -> None:
        trial, cand, info = task.trial, task.candidate, task.info
        t_tell = time.perf_counter()
        try:
            out: WorkerResult = pool.ray.get(ref)
        except Exception as exc:  # the task raised, or its worker died
            self._fail(trial, one_line(exc), info)
            return
        res = out.proxy
        self.worker_seconds.append(res.seconds)
        info.update(out.trial_facts())
        if res.failed or not math.isfinite(res.accuracy):
            self._fail(trial, res.reason or "accuracy is not finite", info)
            return
        trial.set_user_attr("info", info)
        trial.set_user_attr("accuracy", res.accuracy)
        trial.set_user_attr("status", "evaluated")
        latency = trial.user_attrs.get("latencies_ms") or trial.user_attrs["latency_ms"]
        frozen = self.study.tell(trial, _values(self.config.objectives, res.accuracy,
                                                latency_steer(self.ctx, latency)[1], out.bytes, out.memory))
        known.setdefault(cand.key, frozen)
        if self.ladder is not None:
            self.ladder.add_base(trial.number, cand.key, res.accuracy, res.val_loss,
                                 frozen.user_attrs["latency_ms"], res.state)
        self.run.log(f"trial {trial.number}: {cand.key} acc {res.accuracy:.4f} "
                     f"latency {frozen.user_attrs['latency_ms']:.2f} ms ({res.seconds:.1f} s)")
        self.on_trial()
        self.tell_ms[trial.number] = (time.perf_counter() - t_tell) * 1e3

    def loop(self, pool: RayPool) -> None:
        """Keep ``workers`` tasks in flight: a due promotion first (halving), else a new
        candidate while fewer than ``trials`` have been counted; ends when nothing is running
        and nothing is due."""
        cfg = self.config
        known = self._known_results()
        if self.resumed:
            self.earlier = set(known)
        pending: dict[Any, Task] = {}  # Ray object ref -> what it trains
        counted = self.counted(self.counts())
        over = self.counts()["over_budget"]
        max_over = OVER_BUDGET_FACTOR * cfg.trials
        repeats = 0

        def new_pending() -> int:
            return sum(1 for v in pending.values() if isinstance(v, TrialTask))

        try:
            while True:
                while len(pending) < cfg.workers:
                    if self.ladder is not None and self._promote(pool, pending):
                        continue
                    if counted + new_pending() >= cfg.trials:
                        break
                    what = self._ask(pool, known, pending)
                    if what == "over":
                        over += 1
                        if over >= max_over:
                            where = (f"the {self.ctx.budget_ms:.2f} ms budget on {self.ctx.profile.name}"
                                     if not self.ctx.multi else "every device's latency budget (" + ", ".join(
                                         f"{t.budget_ms:.2f} ms on {t.name}" for t in self.ctx.devices) + ")")
                            raise BudgetError(
                                f"{over} of the sampled candidates exceed {where}" + (" or the memory/size budget" if
                                                                 cfg.memory_kb or cfg.size_kb else "") +
                                "; raise --latency-ms" + (" or --memory-kb/--size-kb" if
                                                          cfg.memory_kb or cfg.size_kb else ""))
                    elif what == "duplicate":
                        counted += 1
                    elif what == "repeat":
                        repeats += 1
                        if repeats >= max_over:
                            raise SearchError(f"the resumed sampler proposed {repeats} candidates trained before "
                                              f"the resume; the space may hold no new candidate within the budget")
                self.progress(self._progress(len(pending)))
                if not pending:
                    break
                ready, _ = pool.ray.wait(list(pending), num_returns=1, timeout=1.0)
                for r in ready:
                    entry = pending.pop(r)
                    if isinstance(entry, Promotion):
                        self._collect_rung(pool, r, entry)
                        continue
                    counted += 1
                    self._collect(pool, r, entry, known)
        except KeyboardInterrupt:
            for ref, entry in pending.items():
                try:
                    pool.ray.cancel(ref, force=True)
                except Exception:
                    pass
                if isinstance(entry, Promotion):  # stays listed as promoting: runs again on --resume
                    continue
                trial = entry.trial
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("interrupted", True)
                trial.set_user_attr("reason", "interrupted (Ctrl-C); runs again on --resume")
                self.study.tell(trial, state=TrialState.FAIL)
            raise

    def prune_checkpoints(self) -> None:
        """After the search: keep the checkpoints of the front's trials and of the default pick
        (weights only)."""
        if self.ladder is None:
            return
        rows = read_trials(self.study)
        keep = set()
        for t in self.ctx.devices:  # every device's front and default pick
            seen = rows_for_device(rows, t.name if self.ctx.multi else None)
            keep |= {r.number for r in pareto_front(seen, t.budget_ms)}
            best = best_trial(seen, t.budget_ms)  # the default pick: with rungs it need not be on the front
            keep |= {r.number for r in rows if best is not None and r.key == best.key and r.status == "evaluated"}
        freed = self.ladder.prune_checkpoints(keep)
        self.run.log(f"checkpoints: kept {len(keep)} (the front's and the best's, weights only), "
                     f"freed {freed / 1e6:.1f} MB")

    def _fail(self, trial, reason: str, info: dict | None = None) -> None:
        if info is not None:
            trial.set_user_attr("info", info)
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("reason", reason)
        self.study.tell(trial, state=TrialState.FAIL)
        self.run.log(f"trial {trial.number}: FAILED {trial.user_attrs.get('key')}: {reason}")
        self.on_trial()

    def on_trial(self, force: bool = False) -> None:
        """After a finished trial: tell the observers (at most every 5 s; the study is the
        record, what they write are views of it)."""
        now = time.perf_counter()
        if force or now - self._tables_at >= TABLES_EVERY_S:
            for o in self.observers:
                o.trials_changed(self.view())
            self._tables_at = now

    def view(self) -> RunView:
        return RunView(self.run.path, self.study, self.config, self.ctx.meta)

    def ended(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for o in self.observers:
            files.update(o.search_ended(self.view()))
        return files


# ----------------------------------------------------------------------------- entry points

def run_search(config: SearchConfig | RunContext,
               progress: Callable[[SearchProgress], None] | None = None,
               observers: Sequence[SearchObserver] = ()) -> SearchResult:
    """Start a new run in ``<config.out>/<name>/`` (from a config, or a context already
    resolved with ``nas.run.resolve_run``); ``observers`` are told as trials finish (the
    report: ``nas.api.run_search`` subscribes it)."""
    ctx = config if isinstance(config, RunContext) else resolve_run(config)
    with RunFolder(ctx.run_dir) as run:
        try:
            optuna.create_study(study_name=ctx.meta.study_name, storage=open_storage(ctx.meta.storage),
                                directions=["maximize"] + ["minimize"] * (len(ctx.config.metric_names(
                                    ctx.device_names())) - 1))
        except optuna.exceptions.DuplicatedStudyError:
            raise SearchError(f"study {ctx.meta.study_name!r} already exists in {ctx.meta.storage}; "
                              f"choose another --name") from None
        study = optuna.load_study(study_name=ctx.meta.study_name, storage=open_storage(ctx.meta.storage))
        with warnings.catch_warnings():  # experimental since Optuna 3.2; names the objectives in the dashboard
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(ctx.config.metric_names(ctx.device_names()))
        study.set_user_attr(CONSTRAINT_NAMES_ATTR, ctx.config.constraint_names(ctx.device_names()))
        write_dashboard_note(study)  # over-budget trials show accuracy 0.0 there: a placeholder
        ctx = record_inputs(ctx)  # the device profile copied into the run: what prices candidates from now on
        write_run_config(run.path, ctx.config, ctx.meta)
        on = "; ".join(f"{t.profile.label}, budget {t.budget_ms:.2f} ms ({t.budget_source})" for t in ctx.devices)
        run.log(f"new run {ctx.meta.study_name}: {ctx.space.name} on {on}, {ctx.config.trials} trials, "
                f"{ctx.config.workers} workers, data {ctx.meta.dataset}")
        for note in ctx.budget_notes:
            run.log(note)
        return _drive(ctx, run, progress, observers)


def resume_search(run_dir: str | os.PathLike | RunContext,
                  progress: Callable[[SearchProgress], None] | None = None,
                  data_progress: Callable[[str, int, int], None] | None = None,
                  observers: Sequence[SearchObserver] = (), allow_changed: bool = False,
                  **overrides) -> SearchResult:
    """Continue a run: finished trials are kept, interrupted ones run again, up to the
    original trial count (``trials``, ``workers``, ``ray_address`` or ``distill`` may be
    overridden: ``trials`` above the finished count extends a finished run; the new values are
    written to config.yaml). A changed space file or data is refused unless ``allow_changed``
    (``nas.run.open_run``). ``data_progress(what, done, total)``: an image folder decoded or
    resized again (its cache was cleared, or the run moved to another machine)."""
    folder = run_dir.run_dir if isinstance(run_dir, RunContext) else Path(run_dir)
    if not folder.is_dir():
        raise SearchError(f"{folder} is not a run folder (no such directory)")
    with RunFolder(folder) as run:  # the lock first: another process may be running it
        meta = run_dir.meta if isinstance(run_dir, RunContext) else read_run_config(folder)[1]
        open_study(meta.study_name, meta.storage)  # a damaged study is refused before anything is written
        ctx = run_dir if isinstance(run_dir, RunContext) else \
            open_run(folder, data_progress, allow_changed=allow_changed, **overrides)
        prepare_proxy_sides(ctx.space, ctx.dataset, data_progress)
        write_run_config(run.path, ctx.config, ctx.meta)  # the overrides given (e.g. more trials)
        run.log(f"resuming {ctx.config.name}" + "".join(f", {k} {v}" for k, v in overrides.items() if v is not None))
        return _drive(ctx, run, progress, observers, resume=True)


def _drive(ctx: RunContext, run: RunFolder, progress, observers: Sequence[SearchObserver],
           resume: bool = False) -> SearchResult:
    config = ctx.config
    search = _Search(ctx, run, progress, observers, resume=resume)
    if resume:
        n = search.requeue_interrupted()
        if n:
            run.log(f"{n} interrupted trial(s) will run again")
    gpu_share = 1.0 / config.trials_per_gpu if ctx.proxy.device.startswith("cuda") else 0.0
    with RayPool(config.workers, config.ray_address, ctx.proxy.threads, gpu_share) as pool:
        search.data_ref = pool.ray.put(ctx.dataset)
        try:
            if config.proxy_kind == "supernet":
                search.prepare_supernet(pool)
            search.evaluate_references(pool)
            search.loop(pool)
            search.progress(search._progress(0))  # the bar ends at the final count
            search.prune_checkpoints()
        except KeyboardInterrupt:
            c = search.counts()
            run.log("interrupted")
            search.ended()
            raise SearchInterrupted(run.path, search.counted(c), config.trials) from None
    files = search.ended()
    c = search.counts()
    best = search.best()
    seconds = time.perf_counter() - search.t0
    run.log(f"search finished in {seconds:.0f} s: {c['evaluated']} evaluated, {c['failed']} failed, "
            f"{c['over_budget']} over budget, best {best[0]} ({best[1]})")
    if c["failed"] and not c["evaluated"] and not c["duplicate"]:
        reasons = [r.reason for r in read_trials(search.study) if r.status == "failed" and r.reason]
        raise SearchError(f"every trained trial failed ({c['failed']} of {c['failed']}); the first reason: "
                          f"{reasons[0] if reasons else 'unknown'} (all reasons: {run.file('search.log')})")
    both = [search.ask_ms[n] + search.tell_ms[n] for n in search.tell_ms if n in search.ask_ms]
    driver = {"ask": _median(list(search.ask_ms.values())), "tell": _median(list(search.tell_ms.values())),
              "per_trial": _median(both)}
    by_device = {}
    if ctx.multi:
        rows = read_trials(search.study)
        for t in ctx.devices:
            b = best_trial(rows_for_device(rows, t.name), t.budget_ms)
            by_device[t.name] = (None, None) if b is None else (b.accuracy, b.key)
    return SearchResult(run.path, ctx.meta.study_name, ctx.meta.storage, ctx.budget_ms, config.trials,
                        c["evaluated"], c["failed"], c["over_budget"], best[0], best[1], files, seconds,
                        driver, ctx, by_device)
