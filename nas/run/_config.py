"""A run's configuration (``SearchConfig``) and its ``config.yaml``: the one place that file is
written (``write_run_config``) and read (``read_run_config``).

config.yaml holds the configuration under ``config`` and, beside it, what was derived when the
run started (``RunMeta``: the budget and its source, the device's provenance, the dataset,
the study's storage ...). A resumed run keeps the proxy budget recorded there.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from nas._paths import atomic_write
from nas._typecheck import expect
from nas.errors import SearchError
from nas.supernet import SupernetBudget
from nas.train import ProxyBudget

__all__ = ["Rungs", "FIDELITIES", "PROXY_KINDS", "PROMOTIONS", "STEERS", "SearchConfig", "RunMeta", "DeviceMeta", "SAMPLERS",
           "OBJECTIVES", "CONFIG_FILE",
           "write_run_config",
           "read_run_config", "load_config", "storage_on_disk", "storage_in_run"]

SAMPLERS = ("tpe", "nsga2", "random")
OBJECTIVES = ("acc", "latency", "size", "memory")
RANK_BY = ("accuracy", "val_loss")
CONFIG_FILE = "config.yaml"
FIDELITIES = ("halving", "single")
PROXY_KINDS = ("supernet", "train")  # --proxy
PROMOTIONS = ("pareto", "bands")  # how a rung orders its candidates for promotion
# several devices: how the sampler sees their budgets (nas.search._driver). "constraints": one
# constraint per device, latency / budget - 1, and one latency objective, the largest latency / budget;
# "objectives": one latency / budget objective per device and one constraint, met when any device's is
STEERS = ("constraints", "objectives")


@dataclass(frozen=True)
class Rungs:
    """``count`` rungs (rung 0 included), each ``eta`` times the budget of the one below."""

    eta: int = 3
    count: int = 3

    def validate(self) -> None:
        if self.eta < 2:
            raise SearchError(f"--eta must be at least 2, got {self.eta}")
        if not 1 <= self.count <= 6:
            raise SearchError(f"--rungs must be between 1 and 6, got {self.count}")

    def epochs(self, rung: int, base: float) -> float:
        """Total epochs a candidate has trained once it finishes ``rung``."""
        return base * self.eta ** rung

    def segment(self, rung: int, base: float) -> float:
        """Epochs a promotion to ``rung`` trains on top of the checkpoint of ``rung - 1``."""
        return self.epochs(rung, base) - self.epochs(rung - 1, base)

    def cost_per_candidate(self) -> float:
        """Expected base budgets per candidate when every rung promotes 1/eta of it."""
        return 1 + sum((self.eta ** r - self.eta ** (r - 1)) / self.eta ** r for r in range(1, self.count))


@dataclass(frozen=True)
class SearchConfig:
    """Everything a run needs; saved under ``config`` in ``config.yaml``."""

    device: str = "pixel7"  # a profile name or YAML path; several, comma-separated: a model per device
    space: str = "mobilenetv3"
    # None: each device's latency of the budget reference (nas.run._context); several devices: one
    # value per device (a tuple, in ``devices()`` order), or None
    latency_ms: float | tuple[float, ...] | None = None
    memory_kb: float | None = None  # peak memory at batch 1, activations + weights (nas.space._memory)
    size_kb: float | None = None  # weights at their bit widths (a trial's bytes)
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
    fidelity: str = "single"  # "halving": asynchronous successive halving over rungs (nas.search._halving)
    eta: int = 3  # halving: each rung trains eta x the one below, and promotes 1/eta of it
    rungs: int = 3  # halving: rungs, the base rung included
    rank_by: str = "accuracy"  # what a rung ranks candidates by: accuracy or val_loss
    promote: str = "pareto"  # halving: promotion order, Pareto rank + crowding, or signal within latency bands
    accelerator: str = "auto"  # where trials train: auto (CUDA when torch sees a GPU), cpu or cuda
    trials_per_gpu: int = 1  # trials sharing one GPU (each Ray task asks for 1/K of it)
    proxy_kind: str = "train"  # how a trial's accuracy is had: "supernet" (inherited weights) or "train" (short proxy)
    supernet: dict = field(default_factory=dict)  # SupernetBudget overrides (--supernet-epochs ...)
    supernet_workers: int = 1  # >1: the supernet trains data-parallel on that many Ray Train workers
    steer: str = "constraints"  # several devices: how the sampler sees their budgets (STEERS)

    _TYPES = {"device": str, "steer": str, "space": str, "data": str, "sampler": str, "out": str, "trials": int,
              "fidelity": str, "eta": int, "rungs": int, "rank_by": str, "promote": str, "workers": int, "seed": int,
              "references": int, "distill": bool, "proxy": dict,
              "objectives": tuple, "latency_ms": (float, tuple, type(None)),
              "memory_kb": (float, type(None)), "size_kb": (float, type(None)), "name": (str, type(None)),
              "ray_address": (str, type(None)), "storage": (str, type(None)), "accelerator": str,
              "trials_per_gpu": int, "proxy_kind": str, "supernet": dict, "supernet_workers": int}

    def validate(self) -> None:
        for k, typ in self._TYPES.items():
            expect(getattr(self, k), typ, k, SearchError)
        if self.trials < 1:
            raise SearchError(f"--trials must be at least 1, got {self.trials}")
        if self.workers < 1:
            raise SearchError(f"--workers must be at least 1, got {self.workers}")
        if self.accelerator not in ("auto", "cpu", "cuda"):
            raise SearchError(f"--accelerator {self.accelerator!r}: choose auto, cpu or cuda")
        if self.trials_per_gpu < 1:
            raise SearchError(f"--trials-per-gpu must be at least 1, got {self.trials_per_gpu}")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        objs = list(self.objectives)
        bad = [o for o in objs if o not in OBJECTIVES]
        if bad or len(set(objs)) != len(objs) or objs[:2] != ["acc", "latency"]:
            raise SearchError(f"--objectives must be acc,latency followed by size and/or memory if wanted; "
                              f"got {','.join(objs)}")
        for flag, v in (("--memory-kb", self.memory_kb), ("--size-kb", self.size_kb)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise SearchError(f"{flag} must be a positive number, got {v}")
        devices = self.devices()
        if any(not d for d in devices) or len(set(devices)) != len(devices):
            raise SearchError(f"--device must name each device once, comma-separated; got {self.device!r}")
        if self.steer not in STEERS:
            raise SearchError(f"--steer must be one of {', '.join(STEERS)}, got {self.steer!r}")
        budgets = self.latency_ms if isinstance(self.latency_ms, tuple) else (self.latency_ms,)
        if isinstance(self.latency_ms, tuple) and len(budgets) != len(devices):
            raise SearchError(f"--latency-ms gives {len(budgets)} budget(s) for {len(devices)} device(s) "
                              f"({', '.join(devices)}): give one per device, comma-separated, or none")
        if len(devices) > 1 and self.latency_ms is not None and not isinstance(self.latency_ms, tuple):
            raise SearchError(f"--latency-ms gives 1 budget for {len(devices)} devices ({', '.join(devices)}): "
                              f"give one per device, comma-separated, or none")
        for v in budgets:
            expect(v, (float, type(None)), "latency_ms", SearchError)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise SearchError(f"--latency-ms must be a positive number, got {v}")
        if self.fidelity not in FIDELITIES:
            raise SearchError(f"--fidelity must be one of {', '.join(FIDELITIES)}, got {self.fidelity!r}")
        if self.rank_by not in RANK_BY:
            raise SearchError(f"--rank-by must be one of {', '.join(RANK_BY)}, got {self.rank_by!r}")
        if self.promote not in PROMOTIONS:
            raise SearchError(f"--promote must be one of {', '.join(PROMOTIONS)}, got {self.promote!r}")
        self.ladder().validate()
        if self.references < 0:
            raise SearchError(f"--references must be 0 or more, got {self.references}")
        names = {f.name for f in fields(ProxyBudget)}
        unknown = sorted(set(self.proxy) - names)
        if unknown:
            raise SearchError(f"unknown proxy setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        for f in fields(ProxyBudget):  # values from a CLI flag or a (hand-edited) config.yaml
            if f.name in self.proxy:
                typ = (float,) if isinstance(f.default, float) else (str,) if isinstance(f.default, str) else (int,)
                if f.default is None or "None" in str(f.type):
                    typ += (type(None),)
                expect(self.proxy[f.name], typ, f"proxy setting {f.name}", SearchError)
        flags = {"epochs": "--proxy-epochs", "max_train_images": "--proxy-images"}
        for k in ("epochs", "max_train_images", "batch_size", "max_val_images", "threads"):
            v = self.proxy.get(k)
            if v is not None and v <= 0:  # 0 images would train nothing and score at chance
                raise SearchError(f"{flags.get(k, 'proxy setting ' + k)} must be more than 0, got {v}")
        if self.proxy_kind not in PROXY_KINDS:
            raise SearchError(f"--proxy must be one of {', '.join(PROXY_KINDS)}, got {self.proxy_kind!r}")
        if self.proxy_kind == "supernet" and self.fidelity == "halving":
            raise SearchError("--fidelity halving trains candidates in rungs; it needs --proxy train "
                              "(a supernet scores every candidate from its weights, without training)")
        if self.supernet_workers < 1:
            raise SearchError(f"--supernet-workers must be at least 1, got {self.supernet_workers}")
        sn_names = {f.name: f for f in fields(SupernetBudget)}
        unknown = sorted(set(self.supernet) - set(sn_names))
        if unknown:
            raise SearchError(f"unknown supernet setting(s) {', '.join(unknown)}; known: {', '.join(sorted(sn_names))}")
        for k, v in self.supernet.items():
            default = sn_names[k].default
            typ = (float, int) if isinstance(default, float) else (int,) if isinstance(default, int) else (object,)
            if "None" in str(sn_names[k].type):
                typ += (type(None),)
            expect(v, typ, f"supernet setting {k}", SearchError)
            if k in ("epochs", "batch_size", "max_train_images") and v is not None and v <= 0:
                flag = "--supernet-epochs" if k == "epochs" else f"supernet setting {k}"
                raise SearchError(f"{flag} must be more than 0, got {v}")
            if k == "member_limit" and not (v >= 1 and math.isfinite(v)):  # below 1, candidates within the
                # budget would be scored from weights no step trained for them
                raise SearchError(f"--supernet-limit must be at least 1 (times the latency budget), got {v}")
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise SearchError(f"--name must be a plain folder name, got {self.name!r}")

    def devices(self) -> tuple[str, ...]:
        """The devices as given (names or YAML paths), in order: the first is the primary one, whose
        latency every single-device view (``latency_ms`` of a trial, the search's summary) shows."""
        return tuple(d.strip() for d in self.device.split(","))

    def budgets_given(self) -> tuple[float | None, ...]:
        """The latency budget given for each device (None: its default), in ``devices()`` order."""
        if isinstance(self.latency_ms, tuple):
            return self.latency_ms
        return (self.latency_ms,) * len(self.devices())

    def ladder(self) -> Rungs:
        return Rungs(self.eta, self.rungs if self.fidelity == "halving" else 1)

    def metric_names(self, devices: tuple[str, ...] = ()) -> list[str]:
        """The study's objective names, in ``objectives`` order; with several ``devices`` (profile
        names) latency is divided by each device's budget (``steer``: one objective, the largest
        ratio, or one per device)."""
        names = {"acc": "accuracy", "latency": "latency_ms", "size": "size_mb", "memory": "memory_mb"}
        out = [names[o] for o in self.objectives]
        if len(devices) > 1:
            out[1:2] = (["latency_per_budget_max"] if self.steer == "constraints" else
                        [f"latency_per_budget_{d}" for d in devices])
        return out

    def constraint_names(self, devices: tuple[str, ...] = ()) -> list[str]:
        """The constraints each trial records (``nas.search._trials.set_constraints``), in order;
        with several ``devices`` (profile names) latency over budget is relative to the budget:
        one per device (``steer`` constraints), or one met when any device's budget is met."""
        latency = ["latency_over_budget_ms"]
        if len(devices) > 1:
            latency = ([f"latency_over_budget_{d}" for d in devices] if self.steer == "constraints" else
                       ["latency_over_every_budget"])
        return latency + [f"{n}_over_budget_kb" for n, v in (("size", self.size_kb), ("memory", self.memory_kb))
                          if v is not None]

    def budget(self) -> ProxyBudget:
        return replace(ProxyBudget(), **self.proxy)

    def supernet_budget(self) -> SupernetBudget:
        return replace(SupernetBudget(), **self.supernet)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        if isinstance(self.latency_ms, tuple):
            d["latency_ms"] = list(self.latency_ms)
        return d


@dataclass(frozen=True)
class RunMeta:
    """What was derived when the run started, recorded beside the configuration."""

    study_name: str
    storage: str
    latency_budget_ms: float
    latency_budget_source: str
    device_label: str
    device_provenance: str
    device_source: str
    dataset: str
    num_classes: int
    proxy_budget: dict
    space_source: str = ""  # the space's YAML file (a copy of a built-in shares its name)
    accelerator: str = ""  # what the trials trained on when the run started (nas.train._accel)
    hwnas_version: str = ""
    created: str = ""
    # what the run was made from (nas.run._identity); empty in runs written before they were recorded
    space_sha256: str = ""  # of space_source
    data_path: str = ""  # absolute: the file or image folder read (the shipped file, the cifar10 cache)
    data_digest: str = ""  # sha256:<content> of a file, files:<list, sizes, mtimes> of a folder
    device_path: str = ""  # the profile YAML the run started from (absolute)
    profile_copy: str = ""  # the run's copy of it, relative to the run folder: what prices candidates
    profile_digest: str = ""  # of the copy (its YAML and table files)
    # several devices: one record each, in the order given (the first's facts are also those above);
    # empty for a run on one device
    devices: tuple["DeviceMeta", ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.devices:  # a one-device run's config.yaml stays as it was
            del d["devices"]
        else:
            d["devices"] = [asdict(m) for m in self.devices]
        return d


@dataclass(frozen=True)
class DeviceMeta:
    """One device of a run on several: its profile, where the run's copy is and its budget."""

    name: str  # the profile's name: its winner's folder (winner/<name>/), its trials.csv column
    given: str  # as given with --device (a name or a YAML path)
    label: str
    provenance: str
    source: str
    budget_ms: float
    budget_source: str
    path: str = ""  # the profile YAML the run started from (absolute)
    profile_copy: str = ""  # the run's copy, relative to the run folder
    profile_digest: str = ""


def _is_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite:///") and url != "sqlite:///:memory:"


def storage_on_disk(url: str, run_dir: Path) -> str:
    """The storage URL as config.yaml keeps it: a SQLite file inside the run folder relative to
    it (``sqlite:///study.db``), so that a copied folder reads its own database and a moved one
    still finds it; anything else as it is."""
    if _is_sqlite_file(url):
        path = Path(url[len("sqlite:///"):])
        if path.is_absolute():
            try:
                return f"sqlite:///{path.resolve().relative_to(Path(run_dir).resolve()).as_posix()}"
            except ValueError:
                pass
    return url


def storage_in_run(url: str, run_dir: Path) -> str:
    """The storage URL a process opens: a relative SQLite path in config.yaml is relative to the
    run folder wherever it is now; an absolute one (runs written before this rule, or --storage
    outside the run) as it is."""
    if _is_sqlite_file(url) and not Path(url[len("sqlite:///"):]).is_absolute():
        return f"sqlite:///{Path(run_dir).resolve() / url[len('sqlite:///'):]}"
    return url


def write_run_config(run_dir: Path, config: SearchConfig, meta: RunMeta) -> Path:
    """Write ``config.yaml`` (atomically)."""
    path = Path(run_dir) / CONFIG_FILE
    meta = replace(meta, storage=storage_on_disk(meta.storage, Path(run_dir)))
    atomic_write(path, yaml.safe_dump({"config": config.to_dict(), **meta.to_dict()}, sort_keys=False))
    return path


def read_run_config(run_dir: str | Path) -> tuple[SearchConfig, RunMeta]:
    """The configuration and derived facts of a run folder; one clear SearchError for a folder
    that is not a run, a malformed file or a hand edit that does not type-check."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise SearchError(f"{run_dir} is not a run folder (no such directory)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SearchError(f"{run_dir} is not a run folder (no {CONFIG_FILE})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SearchError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise SearchError(f"{path}: no 'config' mapping")
    known = {f.name for f in fields(SearchConfig)}
    cfg: dict[str, Any] = {k: v for k, v in raw["config"].items() if k in known}
    for k in ("objectives", "latency_ms"):
        if isinstance(cfg.get(k), list):
            cfg[k] = tuple(cfg[k])
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
    meta_fields = {f.name: f for f in fields(RunMeta)}
    values = {k: v for k, v in raw.items() if k in meta_fields}
    missing = [f.name for f in meta_fields.values() if f.name not in values
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise SearchError(f"{path}: not written by a search (missing {', '.join(missing)})")
    if values.get("devices"):
        if not isinstance(values["devices"], list) or not all(isinstance(d, dict) for d in values["devices"]):
            raise SearchError(f"{path}: devices must be a list of mappings")
        try:
            values["devices"] = tuple(DeviceMeta(**d) for d in values["devices"])
        except TypeError as exc:
            raise SearchError(f"{path}: devices: {exc}") from None
    meta = RunMeta(**values)
    for k, typ in (("study_name", str), ("storage", str), ("latency_budget_ms", float), ("num_classes", int)):
        expect(getattr(meta, k), typ, f"{path}: {k}", SearchError)
    return config, replace(meta, storage=storage_in_run(meta.storage, run_dir))


def load_config(path: Path) -> tuple[SearchConfig, dict]:
    """(config, the whole of config.yaml as a mapping); ``read_run_config`` for typed facts."""
    config, meta = read_run_config(Path(path).parent)
    return config, {"config": config.to_dict(), **meta.to_dict()}
