"""The search: an Optuna multi-objective study, candidates evaluated by Ray workers.

The driver asks the study for a trial, turns it into a Candidate (``SearchSpace.suggest``),
prices it on the device profile and, when it fits the latency budget, submits a Ray task that
trains it briefly (``evaluate_proxy``); it keeps ``workers`` tasks in flight and tells the study
each result as it arrives (ask/tell). Candidates over the budget are told at once (accuracy 0,
constraint violated) and cost no worker time; a candidate seen before reuses its result. The
study, in SQLite inside the run folder, is the record of truth: every file beside it is derived
from it (``nas.report``) and can be regenerated.

``trials`` counts trained trials only: ``trials=N`` trains N candidates (failures included).
Over-budget and repeated candidates are recorded but not counted; at most
``OVER_BUDGET_FACTOR * N`` over-budget candidates are drawn before the search gives up.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from nas.candidate import Candidate
from nas.errors import NasError
from nas.proxy import ProxyBudget
from nas.runfolder import RunFolder

__all__ = ["SearchConfig", "SearchProgress", "SearchResult", "SearchError", "BudgetError",
           "SearchInterrupted", "run_search", "resume_search", "default_budget", "load_config",
           "SAMPLERS", "OBJECTIVES", "BUDGET_REFERENCE", "trial_attrs"]

SAMPLERS = ("tpe", "nsga2", "random")
OBJECTIVES = ("acc", "latency", "size")
BUDGET_REFERENCE = ("mobilenetv3", "mobilenet_v3_small_1.0_224")
OVER_BUDGET_FACTOR = 20
FEASIBILITY_SAMPLES = 2000

log = logging.getLogger(__name__)


class SearchError(NasError, ValueError):
    """A search cannot start or continue (bad configuration, existing run, no feasible
    candidate ...)."""


class BudgetError(SearchError):
    """No candidate of the space meets the latency budget."""


class SearchInterrupted(NasError, KeyboardInterrupt):
    """The search was stopped (Ctrl-C); finished trials are kept and the run can resume."""

    def __init__(self, run_dir: Path, done: int, total: int):
        super().__init__(f"search interrupted after {done}/{total} trials; continue with "
                         f"`nas search --resume {run_dir}`")
        self.run_dir = run_dir


@dataclass(frozen=True)
class SearchConfig:
    """Everything a run needs; saved as ``config.yaml`` in the run folder."""

    device: str = "pixel7"
    space: str = "mobilenetv3"
    latency_ms: float | None = None  # None: the device's latency of BUDGET_REFERENCE
    trials: int = 40
    workers: int = 2
    data: str = "builtin"
    sampler: str = "tpe"
    objectives: tuple[str, ...] = ("acc", "latency")
    seed: int = 0
    out: str = "results"
    name: str | None = None
    ray_address: str | None = None
    storage: str | None = None  # an RDB URL; default sqlite:///<run>/study.db
    distill: bool = True
    references: int = 4  # reference networks trained by the same proxy, for the report
    proxy: dict = field(default_factory=dict)  # ProxyBudget overrides

    def validate(self) -> None:
        kinds = {"device": str, "space": str, "data": str, "sampler": str, "out": str, "trials": int,
                 "workers": int, "seed": int, "references": int, "distill": bool, "proxy": dict,
                 "objectives": tuple, "latency_ms": (int, float, type(None)), "name": (str, type(None)),
                 "ray_address": (str, type(None)), "storage": (str, type(None))}
        for k, typ in kinds.items():
            v = getattr(self, k)
            if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
                raise SearchError(f"{k}: expected {getattr(typ, '__name__', 'a number or nothing')}, got {v!r}")
        if self.trials < 1:
            raise SearchError(f"--trials must be at least 1, got {self.trials}")
        if self.workers < 1:
            raise SearchError(f"--workers must be at least 1, got {self.workers}")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        objs = list(self.objectives)
        bad = [o for o in objs if o not in OBJECTIVES]
        if bad or len(set(objs)) != len(objs) or objs[:2] != ["acc", "latency"]:
            raise SearchError(f"--objectives must be acc,latency or acc,latency,size; got {','.join(objs)}")
        if self.latency_ms is not None and not (self.latency_ms > 0 and math.isfinite(self.latency_ms)):
            raise SearchError(f"--latency-ms must be a positive number, got {self.latency_ms}")
        if self.references < 0:
            raise SearchError(f"--references must be 0 or more, got {self.references}")
        names = {f.name for f in fields(ProxyBudget)}
        unknown = sorted(set(self.proxy) - names)
        if unknown:
            raise SearchError(f"unknown proxy setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        for f in fields(ProxyBudget):  # values from a CLI flag or a (hand-edited) config.yaml
            if f.name not in self.proxy:
                continue
            v, default = self.proxy[f.name], f.default
            ok = (v is None and "None" in str(f.type)) or (
                isinstance(v, (int, float)) and not isinstance(v, bool)
                and (isinstance(default, float) or isinstance(v, int) or default is None))
            if not ok:
                raise SearchError(f"proxy setting {f.name}: expected a number, got {v!r}")
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise SearchError(f"--name must be a plain folder name, got {self.name!r}")

    def budget(self) -> ProxyBudget:
        return replace(ProxyBudget(), **self.proxy)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        return d


def load_config(path: Path) -> tuple[SearchConfig, dict]:
    """(config, the rest of config.yaml: derived facts such as the resolved budget)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise SearchError(f"{path} not found: not a run folder") from None
    except yaml.YAMLError as exc:
        raise SearchError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise SearchError(f"{path}: no 'config' mapping")
    known = {f.name for f in fields(SearchConfig)}
    cfg = {k: v for k, v in raw["config"].items() if k in known}
    if "objectives" in cfg:
        cfg["objectives"] = tuple(cfg["objectives"])
    recorded = raw.get("proxy_budget")
    if isinstance(recorded, dict) and isinstance(cfg.get("proxy", {}), dict):
        # pin the budget the run started with: a resumed run keeps it when a default changes
        names = {f.name for f in fields(ProxyBudget)} - {"memory_limit_bytes"}
        cfg["proxy"] = {**{k: v for k, v in recorded.items() if k in names}, **cfg.get("proxy", {})}
    try:
        config = SearchConfig(**cfg)
    except TypeError as exc:
        raise SearchError(f"{path}: {exc}") from None
    config.validate()
    return config, raw


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


# ----------------------------------------------------------------------------- helpers

def default_budget(profile, num_classes: int) -> tuple[float, str]:
    """(latency budget in ms, a sentence saying where it comes from)."""
    from nas.spaces import load_space

    space_name, ref = BUDGET_REFERENCE
    cand = load_space(space_name).reference(ref)
    ms = profile.latency_ms(cand, num_classes=num_classes)
    return ms, f"the predicted latency of {ref} on {profile.label}"


def fastest_sampled(space, profile, num_classes: int, seed: int, n: int) -> tuple[float, str]:
    """The lowest predicted latency among ``n`` seeded random candidates of the space."""
    rng = random.Random(seed)
    best = (math.inf, "")
    for _ in range(n):
        cand = space.sample(rng)
        ms = profile.latency_ms(cand, num_classes=num_classes)
        if ms < best[0]:
            best = (ms, cand.key)
    return best


def make_sampler(name: str, seed: int, trials: int):
    """The latency budget reaches TPE and NSGA-II as a trial constraint (``set_constraint``):
    infeasible trials rank below feasible ones, by how far over the budget they are."""
    import warnings

    import optuna

    if name == "tpe":
        with warnings.catch_warnings():  # `group` is marked experimental; it is what conditional spaces need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              n_startup_trials=min(10, max(4, trials // 5)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(8, min(50, trials // 4)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SearchError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def _storage(url: str):
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


def _directions(objectives) -> list[str]:
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def _values(objectives, acc: float, latency: float, size_bytes: float) -> list[float]:
    vals = [acc, latency]
    if "size" in objectives:
        vals.append(size_bytes / 1e6)
    return vals


def _bits_summary(cand: Candidate) -> str:
    bits = [b.bits for b in cand.blocks]
    return ",".join(f"{b}:{bits.count(b)}" for b in sorted(set(bits)))


def _keep_summary(cand: Candidate) -> str:
    keeps = [b.keep for b in cand.blocks]
    return f"{min(keeps):g}-{max(keeps):g} (mean {sum(keeps) / len(keeps):.2f})"


def _evaluate(key: str, dataset, seed: int, budget: ProxyBudget, num_classes: int,
              resolution: int) -> dict:
    """Runs in a Ray worker: train the candidate briefly, count it, say where it ran."""
    import socket

    import torch

    from nas.proxy import evaluate_proxy

    torch.set_num_threads(budget.threads)
    res = evaluate_proxy(key, dataset, seed=seed, budget=budget, resolution=resolution)
    params, nbytes = _size(Candidate.parse(key), num_classes, dataset.in_channels)
    out = res.to_dict()
    out.update(params=params, bytes=nbytes, host=socket.gethostname(), pid=os.getpid())
    try:
        import ray

        out["node"] = ray.get_runtime_context().get_node_id()
    except Exception:  # not inside Ray (direct call)
        out["node"] = ""
    return out


class _Ray:
    """Ray for the duration of a search: a local instance (num_cpus = workers, no dashboard)
    unless an address is given or Ray is already initialised by the caller."""

    def __init__(self, workers: int, address: str | None, threads: int):
        self.workers, self.address, self.threads = workers, address, threads
        self.started = False

    def __enter__(self):
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is a dependency
            raise SearchError("Ray is not installed: pip install 'ray>=2.9'") from None
        self.ray = ray
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                      configure_logging=True)
            try:
                if self.address:
                    ray.init(address=self.address, **kw)
                else:
                    ray.init(num_cpus=self.workers, **kw)
            except ConnectionError as exc:
                raise SearchError(f"cannot join Ray at {self.address}: {exc}") from None
            self.started = True
        self.task = ray.remote(num_cpus=self.threads, max_retries=0)(_evaluate)
        return self

    def __exit__(self, *exc):
        if self.started:
            self.ray.shutdown()


# ----------------------------------------------------------------------------- the driver

class _Search:
    def __init__(self, config: SearchConfig, run: RunFolder, meta: dict,
                 progress: Callable[[SearchProgress], None] | None):
        import optuna

        from nas.data import load_dataset
        from nas.latency import load_device
        from nas.spaces import load_space

        self.config, self.run, self.meta = config, run, meta
        self.progress = progress or (lambda p: None)
        self.space = load_space(config.space)
        self.profile = load_device(config.device)
        self.dataset = load_dataset(config.data, seed=config.seed)
        self.num_classes = self.dataset.num_classes
        self.budget = config.budget()
        self.budget_ms = float(meta["latency_budget_ms"])
        self.optuna = optuna
        self.storage_url = meta["storage"]
        self.study = optuna.load_study(study_name=meta["study_name"], storage=_storage(self.storage_url),
                                       sampler=make_sampler(config.sampler, config.seed, config.trials))
        self.t0 = time.perf_counter()
        self.worker_seconds: list[float] = []
        self.ask_ms: dict[int, float] = {}  # driver time per trial: ask, suggest, price, submit
        self.tell_ms: dict[int, float] = {}  # result to study, derived files refreshed

    # ---- counting the study
    def _status_counts(self) -> dict[str, int]:
        counts = {"evaluated": 0, "failed": 0, "over_budget": 0, "duplicate": 0}
        for t in self.study.get_trials(deepcopy=False):
            st = t.user_attrs.get("status")
            if st in counts and not t.user_attrs.get("interrupted"):
                counts[st] += 1
        return counts

    def _best(self) -> tuple[float | None, str | None]:
        """The most accurate trained trial within the budget; ties go to the lower latency, then
        the earlier trial, as in ``nas.distill.pick_winner`` (so both name the same trial)."""
        best, rank = (None, None), None
        for t in self.study.get_trials(deepcopy=False):
            lat = t.user_attrs.get("latency_ms", math.inf)
            if t.user_attrs.get("status") == "evaluated" and lat <= self.budget_ms:
                acc = t.user_attrs.get("accuracy")
                if acc is not None and (rank is None or (acc, -lat, -t.number) > rank):
                    best, rank = (acc, t.user_attrs.get("key")), (acc, -lat, -t.number)
        return best

    def _known_results(self) -> dict[str, Any]:
        known = {}
        for t in self.study.get_trials(deepcopy=False):
            if t.user_attrs.get("status") == "evaluated" and t.values is not None:
                known.setdefault(t.user_attrs["key"], t)
        return known

    # ---- resume bookkeeping
    def requeue_interrupted(self) -> int:
        """Trials left RUNNING by a killed driver, or failed as interrupted by Ctrl-C, are
        marked failed (if needed) and enqueued again with the same parameters."""
        from optuna.trial import TrialState

        storage = self.study._storage
        trials = self.study.get_trials(deepcopy=False)
        rerun = {t.user_attrs.get("rerun_of") for t in trials}
        n = 0
        for t in trials:
            if t.state == TrialState.RUNNING:  # its driver was killed: finish it as failed
                storage.set_trial_user_attr(t._trial_id, "status", "failed")
                storage.set_trial_user_attr(t._trial_id, "interrupted", True)
                storage.set_trial_user_attr(t._trial_id, "reason", "interrupted: the search process stopped")
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
                continue
            if t.number in rerun or "key" not in t.user_attrs:  # killed while being asked: never ran
                continue
            self.study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number})
            n += 1
        return n

    # ---- references
    def evaluate_references(self, ray_) -> None:
        """Train up to ``config.references`` reference networks of the space (the nearest to the
        budget in predicted latency) with the same proxy; stored as a study user attribute."""
        if self.config.references == 0:
            return
        done = {r["name"]: r for r in self.study.user_attrs.get("references", [])}
        rows = []
        for name in self.space.references():
            cand = self.space.reference(name)
            rows.append((abs(math.log(self.profile.latency_ms(cand, self.num_classes) / self.budget_ms)), name, cand))
        rows.sort(key=lambda r: r[0])
        todo = [(n, c) for _, n, c in rows[:self.config.references] if n not in done]
        if not todo:
            return
        self.run.log(f"training {len(todo)} reference network(s) with the same proxy: "
                     + ", ".join(n for n, _ in todo))
        refs = {}
        for name, cand in todo:
            res = self._proxy_resolution(cand)
            refs[ray_.task.remote(cand.key, self.data_ref, self.config.seed, self.budget,
                                  self.num_classes, res)] = (name, cand)
        pending = list(refs)
        while pending:
            self.progress(self._progress(0, f"training reference networks ({len(refs) - len(pending)}/{len(refs)})"))
            ready, pending = ray_.ray.wait(pending, num_returns=1, timeout=1.0)
            for r in ready:
                name, cand = refs[r]
                row = {"name": name, "key": cand.key,
                       "latency_ms": self.profile.latency_ms(cand, self.num_classes),
                       "macs": sum(op.macs for op in cand.ops(num_classes=self.num_classes))}
                try:
                    out = ray_.ray.get(r)
                    row.update(accuracy=None if out["failed"] else out["accuracy"], params=out["params"],
                               bytes=out["bytes"], failed=out["failed"], reason=out["reason"],
                               seconds=out["seconds"])
                except Exception as exc:
                    row.update(accuracy=None, failed=True, reason=_one_line(exc))
                done[name] = row
                self.study.set_user_attr("references", list(done.values()))
                self.run.log(f"reference {name}: accuracy {row.get('accuracy')} latency {row['latency_ms']:.2f} ms")

    def _proxy_resolution(self, cand: Candidate) -> int:
        from nas.proxy import proxy_resolution

        return proxy_resolution(cand, self.dataset.resolution, self.space)

    # ---- progress
    def _progress(self, running: int, message: str = "") -> SearchProgress:
        c = self._status_counts()
        done = c["evaluated"] + c["failed"] + c["duplicate"]
        best = self._best()
        eta = None
        if self.worker_seconds and done < self.config.trials:
            per = sorted(self.worker_seconds)[len(self.worker_seconds) // 2]
            eta = per * (self.config.trials - done) / self.config.workers
        return SearchProgress(done, self.config.trials, running, c["over_budget"], c["failed"],
                              best[0], best[1], time.perf_counter() - self.t0, eta, message)

    # ---- the loop
    def loop(self, ray_) -> None:
        from optuna.trial import TrialState

        cfg = self.config
        objectives = cfg.objectives
        known = self._known_results()
        pending: dict[Any, tuple[Any, Candidate, float]] = {}
        c = self._status_counts()
        counted = c["evaluated"] + c["failed"] + c["duplicate"]
        over = c["over_budget"]
        max_over = OVER_BUDGET_FACTOR * cfg.trials
        try:
            while counted + len(pending) < cfg.trials or pending:
                while len(pending) < cfg.workers and counted + len(pending) < cfg.trials:
                    t_ask = time.perf_counter()
                    trial = self.study.ask()
                    cand = self.space.suggest(trial)
                    lat = self.profile.latency_ms(cand, num_classes=self.num_classes)
                    macs = sum(op.macs for op in cand.ops(num_classes=self.num_classes))
                    # few writes: each user attribute is one SQLite transaction (~4 ms here), so
                    # the secondary facts travel in one "info" dict (read back by trial_attrs)
                    info = {"latency_provenance": self.profile.provenance, "device": self.profile.label,
                            "macs": macs, "bits": _bits_summary(cand), "keep": _keep_summary(cand)}
                    trial.set_user_attr("key", cand.key)
                    trial.set_user_attr("latency_ms", lat)
                    trial.set_constraint("latency_over_budget_ms", lat - self.budget_ms)
                    if lat > self.budget_ms:
                        over += 1
                        params, nbytes = _size(cand, self.num_classes, self.dataset.in_channels)
                        trial.set_user_attr("info", {**info, "params": params, "bytes": nbytes})
                        trial.set_user_attr("status", "over_budget")
                        self.study.tell(trial, _values(objectives, 0.0, lat, nbytes))
                        if over >= max_over:
                            raise BudgetError(
                                f"{over} of the sampled candidates exceed the {self.budget_ms:.2f} ms budget "
                                f"on {self.profile.name}; raise --latency-ms")
                        continue
                    if cand.key in known:
                        prev = trial_attrs(known[cand.key])
                        trial.set_user_attr("info", {**info, **{k: prev[k] for k in ("params", "bytes", "proxy_seconds")
                                                                if k in prev}, "duplicate_of": known[cand.key].number})
                        trial.set_user_attr("accuracy", prev["accuracy"])
                        trial.set_user_attr("status", "duplicate")
                        self.study.tell(trial, _values(objectives, prev["accuracy"], lat, prev.get("bytes", 0)))
                        counted += 1
                        continue
                    ref = ray_.task.remote(cand.key, self.data_ref, cfg.seed, self.budget,
                                           self.num_classes, self._proxy_resolution(cand))
                    self.ask_ms[trial.number] = (time.perf_counter() - t_ask) * 1e3
                    pending[ref] = (trial, cand, info)
                self.progress(self._progress(len(pending)))
                if not pending:
                    continue
                ready, _ = ray_.ray.wait(list(pending), num_returns=1, timeout=1.0)
                for r in ready:
                    trial, cand, info = pending.pop(r)
                    counted += 1
                    t_tell = time.perf_counter()
                    try:
                        out = ray_.ray.get(r)
                    except Exception as exc:  # the task raised, or its worker died
                        self._fail(trial, _one_line(exc), info)
                        continue
                    self.worker_seconds.append(out["seconds"])
                    info.update({k: out[k] for k in ("params", "bytes", "resolution", "host", "node", "pid", "steps",
                                                     "train_seconds", "images_per_second", "loss")},
                                proxy_seconds=out["seconds"])
                    if out["failed"] or not math.isfinite(out["accuracy"]):
                        self._fail(trial, out["reason"] or "accuracy is not finite", info)
                        continue
                    trial.set_user_attr("info", info)
                    trial.set_user_attr("accuracy", out["accuracy"])
                    trial.set_user_attr("status", "evaluated")
                    frozen = self.study.tell(trial, _values(objectives, out["accuracy"],
                                                            trial.user_attrs["latency_ms"],
                                                            out["bytes"]))
                    known.setdefault(cand.key, frozen)
                    self.run.log(f"trial {trial.number}: {cand.key} acc {out['accuracy']:.4f} "
                                 f"latency {frozen.user_attrs['latency_ms']:.2f} ms ({out['seconds']:.1f} s)")
                    self.on_trial()
                    self.tell_ms[trial.number] = (time.perf_counter() - t_tell) * 1e3
        except KeyboardInterrupt:
            for ref, (trial, cand, info) in pending.items():
                try:
                    ray_.ray.cancel(ref, force=True)
                except Exception:
                    pass
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("interrupted", True)
                trial.set_user_attr("reason", "interrupted (Ctrl-C); runs again on --resume")
                self.study.tell(trial, state=TrialState.FAIL)
            raise

    def _fail(self, trial, reason: str, info: dict | None = None) -> None:
        from optuna.trial import TrialState

        if info is not None:
            trial.set_user_attr("info", info)
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("reason", reason)
        self.study.tell(trial, state=TrialState.FAIL)
        self.run.log(f"trial {trial.number}: FAILED {trial.user_attrs.get('key')}: {reason}")
        self.on_trial()

    def on_trial(self, force: bool = False) -> None:
        """After a finished trial: refresh trials.csv and pareto.json (at most every 5 s; the
        study is the record, these are views of it)."""
        from nas.report import write_tables

        now = time.perf_counter()
        if force or now - getattr(self, "_tables_at", -1e9) >= 5.0:
            write_tables(self.run.path, self.study, self.meta)
            self._tables_at = now


def trial_attrs(t) -> dict:
    """A trial's user attributes with its "info" bundle flattened in."""
    a = dict(t.user_attrs)
    return {**a.pop("info", {}), **a}


def _size(cand: Candidate, num_classes: int, in_channels: int) -> tuple[int, int]:
    """(parameters, deployable bytes) of a candidate, from its built module (~25 ms)."""
    from nas.counting import model_bytes
    from nas.models import build_model

    model = build_model(cand, num_classes, in_channels)
    return sum(p.numel() for p in model.parameters()), model_bytes(model)


def _one_line(exc: BaseException) -> str:
    """A short reason for a failed task: Ray wraps a worker's exception in a long message."""
    try:
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            lines = [ln for ln in str(cause).splitlines() if ln.strip()]
            return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:300]
        if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
            return "worker died: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:250]
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


# ----------------------------------------------------------------------------- entry points

def _run_name(config: SearchConfig) -> str:
    return config.name or f"{config.space}-{config.device}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_search(config: SearchConfig, progress: Callable[[SearchProgress], None] | None = None) -> SearchResult:
    """Start a new run in ``<config.out>/<name>/``."""
    import optuna

    from nas.data import load_dataset
    from nas.latency import load_device
    from nas.spaces import load_space

    config.validate()
    space = load_space(config.space)
    profile = load_device(config.device)
    dataset = load_dataset(config.data, seed=config.seed)  # fail early on bad data
    name = _run_name(config)
    config = replace(config, name=name)
    run_dir = Path(config.out) / name
    if run_dir.exists() and any(p.name != RunFolder.LOCK for p in run_dir.iterdir()):
        raise SearchError(f"run folder {run_dir} already exists; continue it with --resume {run_dir} "
                          f"or choose another --name")
    if config.latency_ms is None:
        budget_ms, source = default_budget(profile, dataset.num_classes)
    else:
        budget_ms, source = float(config.latency_ms), "given with --latency-ms"
    if not profile.measure_missing:  # pricing is cheap: check that anything fits at all
        fastest_ms, fastest_key = fastest_sampled(space, profile, dataset.num_classes, config.seed,
                                                  FEASIBILITY_SAMPLES)
        refs = [space.reference(n) for n in space.references()]
        for r in refs:
            ms = profile.latency_ms(r, dataset.num_classes)
            if ms < fastest_ms:
                fastest_ms, fastest_key = ms, r.key
        if fastest_ms > budget_ms:
            raise BudgetError(f"no candidate of {space.name} meets {budget_ms:.2f} ms on {profile.name}: the "
                              f"fastest of {FEASIBILITY_SAMPLES} sampled candidates and the references takes "
                              f"{fastest_ms:.2f} ms ({fastest_key})")
    with RunFolder(run_dir) as run:
        storage = config.storage or f"sqlite:///{run.file('study.db')}"
        meta = {
            "hwnas_version": _version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "study_name": name,
            "storage": storage,
            "latency_budget_ms": budget_ms,
            "latency_budget_source": source,
            "device_label": profile.label,
            "device_provenance": profile.provenance,
            "device_source": profile.source,
            "dataset": dataset.describe(),
            "num_classes": dataset.num_classes,
            "proxy_budget": asdict(config.budget()),
        }
        try:
            optuna.create_study(study_name=name, storage=_storage(storage),
                                directions=_directions(config.objectives))
        except optuna.exceptions.DuplicatedStudyError:
            raise SearchError(f"study {name!r} already exists in {storage}; choose another --name") from None
        run.write("config.yaml", yaml.safe_dump({"config": config.to_dict(), **meta}, sort_keys=False))
        run.log(f"new run {name}: {space.name} on {profile.label}, budget {budget_ms:.2f} ms ({source}), "
                f"{config.trials} trials, {config.workers} workers, data {dataset.describe()}")
        return _drive(config, run, meta, progress)


def resume_search(run_dir: str | os.PathLike, progress: Callable[[SearchProgress], None] | None = None,
                  **overrides) -> SearchResult:
    """Continue a run: finished trials are kept, interrupted ones run again, up to the
    original trial count (``trials`` or ``workers`` may be overridden)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SearchError(f"{run_dir} is not a run folder (no such directory)")
    config, raw = load_config(run_dir / "config.yaml")
    allowed = {"trials", "workers", "ray_address", "distill"}
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise SearchError(f"cannot change {', '.join(bad)} when resuming (only {', '.join(sorted(allowed))})")
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
    meta = {k: v for k, v in raw.items() if k != "config"}
    with RunFolder(run_dir) as run:
        run.log(f"resuming {config.name}")
        return _drive(config, run, meta, progress, resume=True)


def _drive(config: SearchConfig, run: RunFolder, meta: dict, progress, resume: bool = False) -> SearchResult:
    from nas.report import write_report

    search = _Search(config, run, meta, progress)
    if resume:
        n = search.requeue_interrupted()
        if n:
            run.log(f"{n} interrupted trial(s) will run again")
    budget = search.budget
    with _Ray(config.workers, config.ray_address, budget.threads) as ray_:
        search.data_ref = ray_.ray.put(search.dataset)
        try:
            search.evaluate_references(ray_)
            search.loop(ray_)
        except KeyboardInterrupt:
            c = search._status_counts()
            run.log("interrupted")
            write_report(run.path, search.study, meta)
            raise SearchInterrupted(run.path, c["evaluated"] + c["failed"] + c["duplicate"], config.trials) from None
    files = write_report(run.path, search.study, meta)
    c = search._status_counts()
    best = search._best()
    seconds = time.perf_counter() - search.t0
    run.log(f"search finished in {seconds:.0f} s: {c['evaluated']} evaluated, {c['failed']} failed, "
            f"{c['over_budget']} over budget, best {best[0]} ({best[1]})")
    both = [search.ask_ms[n] + search.tell_ms[n] for n in search.tell_ms if n in search.ask_ms]
    driver = {"ask": _median(list(search.ask_ms.values())), "tell": _median(list(search.tell_ms.values())),
              "per_trial": _median(both)}
    return SearchResult(run.path, meta["study_name"], meta["storage"], search.budget_ms, config.trials,
                        c["evaluated"], c["failed"], c["over_budget"], best[0], best[1], files, seconds, driver)


def _median(xs: list[float]) -> float:
    return float(sorted(xs)[len(xs) // 2]) if xs else float("nan")


def _version() -> str:
    from nas import __version__

    return __version__
