"""The run context: a search's space, device profile, dataset, proxy budget, latency budget and
run folder, resolved once into one frozen object.

``resolve_run(config)`` does it for a new run (and checks that the budgets can be met: latency,
peak memory and size, priced on seeded samples of the space and its references);
``open_run(run_dir)`` reads it back from a run folder's config.yaml (resume, distillation).
The CLI, the search driver and distillation take this object instead of re-resolving names,
and the space travels to the Ray workers inside the candidates it makes (as an object), so a
space read from a YAML path is what runs everywhere.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from nas._paths import is_path_like
from nas._version import __version__
from nas.data import BUILTIN, CIFAR10_FILE, Dataset, datasets_cache, decode_threads, load_dataset
from nas.errors import BudgetError, SearchError
from nas.latency import DeviceProfile, load_device
from nas.run._config import DeviceMeta, RunMeta, SearchConfig, read_run_config
from nas.run._identity import (
    PROFILE_DIR,
    check_unchanged,
    copy_profile,
    data_digest,
    data_identity,
    profile_digest,
    sha256_file,
)
from nas.space import Candidate, SearchSpace, footprint, load_space
from nas.supernet import check_supported
from nas.train import ProxyBudget, describe_device, proxy_resolution, proxy_sides, resolve_accelerator

__all__ = ["RunContext", "DeviceTarget", "resolve_run", "open_run", "record_inputs", "default_budget", "fastest_sampled",

           "BUDGET_REFERENCE", "FEASIBILITY_SAMPLES", "RARE_SHARE", "RESUME_OVERRIDES"]

BUDGET_REFERENCE = ("mobilenetv3", "mobilenet_v3_small_1.0_224")
FEASIBILITY_SAMPLES = 2000
RARE_SHARE = 0.1  # a memory or size budget fewer sampled candidates than this share meet: said so
RESUME_OVERRIDES = ("trials", "workers", "ray_address", "distill")


@dataclass(frozen=True)
class DeviceTarget:
    """One device a run prices candidates on: its profile and its latency budget."""

    profile: DeviceProfile
    budget_ms: float
    budget_source: str

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass(frozen=True)
class RunContext:
    config: SearchConfig
    space: SearchSpace
    profile: DeviceProfile
    dataset: Dataset
    proxy: ProxyBudget
    budget_ms: float
    budget_source: str
    run_dir: Path
    meta: RunMeta
    # what the feasibility check found worth saying (how rare a memory or size budget is): the
    # CLI prints it and the driver logs it; empty for a run opened again
    budget_notes: tuple[str, ...] = ()
    # several devices (``--device a,b,c``): each one's profile and budget, the first being
    # ``profile``/``budget_ms`` above; empty for a run on one device
    targets: tuple[DeviceTarget, ...] = ()

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def devices(self) -> tuple[DeviceTarget, ...]:
        """Every device of the run, the primary one first (one for a run on one device)."""
        return self.targets or (DeviceTarget(self.profile, self.budget_ms, self.budget_source),)

    @property
    def multi(self) -> bool:
        return len(self.targets) > 1

    def device_names(self) -> tuple[str, ...]:
        """The profile names, ``()`` for a run on one device (what ``SearchConfig.metric_names`` takes)."""
        return tuple(t.name for t in self.targets) if self.multi else ()

    def target(self, name: str | None) -> DeviceTarget:
        """The device named ``name`` (None: the primary one); SearchError naming the run's devices."""
        if name is None:
            return self.devices[0]
        for t in self.devices:
            if name in (t.name, t.profile.path and str(t.profile.path)):
                return t
        raise SearchError(f"this run has no device {name!r}; its devices: {', '.join(t.name for t in self.devices)}")

    def latency_on(self, target: DeviceTarget, cand: Candidate) -> float:
        return target.profile.latency_ms(cand, num_classes=self.num_classes, in_channels=self.dataset.in_channels)

    def proxy_side(self, cand: Candidate) -> int:
        """The input side ``cand`` trains at in the proxy (``nas.train._proxy.proxy_resolution``)."""
        return proxy_resolution(cand, self.dataset.resolution)

    def latency_ms(self, cand: Candidate) -> float:
        return self.profile.latency_ms(cand, num_classes=self.num_classes,
                                       in_channels=self.dataset.in_channels)


def default_budget(profile: DeviceProfile, num_classes: int, in_channels: int = 3) -> tuple[float, str]:
    """(latency budget in ms, a sentence saying where it comes from)."""
    space_name, ref = BUDGET_REFERENCE
    cand = load_space(space_name).reference(ref)
    ms = profile.latency_ms(cand, num_classes=num_classes, in_channels=in_channels)
    return ms, f"the predicted latency of {ref} on {profile.label}"


def fastest_sampled(space: SearchSpace, profile: DeviceProfile, num_classes: int, seed: int,
                    n: int, in_channels: int = 3) -> tuple[float, str]:
    """The lowest predicted latency among ``n`` seeded random candidates of the space."""
    best = (math.inf, "")
    for cand in space.sample_many(n, seed):
        ms = profile.latency_ms(cand, num_classes=num_classes, in_channels=in_channels)
        if ms < best[0]:
            best = (ms, cand.key)
    return best


def _check_feasible(space: SearchSpace, profile: DeviceProfile, num_classes: int, seed: int,
                    budget_ms: float, in_channels: int = 3, others: tuple[str, ...] = ()) -> None:
    """BudgetError when no sampled candidate nor reference meets ``budget_ms`` on ``profile``,
    naming the fastest found; ``others``: the run's other devices, named so that the refusal says
    the whole run is refused, none of them dropped."""
    also = f" (one of the run's devices, with {', '.join(others)}: the run is refused)" if others else ""
    fastest_ms, fastest_key = fastest_sampled(space, profile, num_classes, seed, FEASIBILITY_SAMPLES,
                                              in_channels)
    for name in space.references():
        r = space.reference(name)
        ms = profile.latency_ms(r, num_classes, in_channels)
        if ms < fastest_ms:
            fastest_ms, fastest_key = ms, r.key
    if fastest_ms > budget_ms:
        raise BudgetError(f"no candidate of {space.name} meets {budget_ms:.3g} ms on {profile.name}{also}: the "
                          f"fastest of {FEASIBILITY_SAMPLES} sampled candidates and the references takes "
                          f"{fastest_ms:.2f} ms ({fastest_key})")


# ----------------------------------------------------------------------------- memory and size

def _check_footprint(space: SearchSpace, targets: tuple[DeviceTarget, ...], config: SearchConfig,
                     num_classes: int, in_channels: int, price_latency: bool) -> tuple[str, ...]:
    """Refuse a memory or size budget that no sampled candidate (nor reference) meets, naming
    the smallest found; likewise budgets that none meets together. Returns notes saying what
    share of the samples fits each budget (and all of them), for the log."""
    budgets = [(flag, kb, i) for flag, kb, i in (("--size-kb", config.size_kb, 0), ("--memory-kb", config.memory_kb, 1))
               if kb is not None]
    if not budgets:
        return ()
    samples = space.sample_many(FEASIBILITY_SAMPLES, config.seed)
    rows = [(cand, *footprint(cand, num_classes, in_channels))  # (candidate, size, memory)
            for cand in samples + [space.reference(n) for n in space.references()]]
    what = {"--size-kb": "the smallest model (weights at their bit widths)",
            "--memory-kb": "the smallest peak memory (activations at batch 1 plus weights)"}
    problems = []
    for flag, kb, i in budgets:
        smallest = min(rows, key=lambda r: r[1 + i])
        if smallest[1 + i] / 1024 > kb:
            problems.append(f"{flag} {kb:g}: {what[flag]} of {FEASIBILITY_SAMPLES} sampled candidates and the "
                            f"references is {smallest[1 + i] / 1024:.0f} KB ({smallest[0].key})")
    if problems:
        raise BudgetError(f"no candidate of {space.name} meets " + "; ".join(problems))

    def fits(r, with_latency: bool) -> bool:  # latency priced only for those within memory and size
        return all(r[1 + i] / 1024 <= kb for _, kb, i in budgets) and (
            not with_latency or any(t.profile.latency_ms(r[0], num_classes, in_channels) <= t.budget_ms
                                    for t in targets))

    n = len(samples)
    notes = []
    for flag, kb, i in budgets:
        k = sum(1 for r in rows[:n] if r[1 + i] / 1024 <= kb)
        notes.append(f"{flag} {kb:g}: {_share(k, n)} of {n} sampled candidates fit{_rare(k, n)}")
    if len(budgets) > 1 or price_latency:
        meet = [fits(r, price_latency) for r in rows]
        if not any(meet):
            ms = (f"{targets[0].budget_ms:.3g} ms" if len(targets) == 1 else
                  "the latency budget of any of " + ", ".join(t.name for t in targets))
            named = " and ".join([ms] * price_latency + [f"{flag} {kb:g}" for flag, kb, _ in budgets])
            raise BudgetError(f"no candidate of {space.name} meets {named} together: none of {FEASIBILITY_SAMPLES} "
                              f"sampled candidates and the references does (each budget alone is met)")
        k = sum(meet[:n])
        notes.append(f"all budgets together ({'latency, ' * price_latency}"
                     f"{', '.join(f[2:-3] for f, _, _ in budgets)}): {_share(k, n)} of {n} sampled candidates "
                     f"fit{_rare(k, n)}")
    return tuple(notes)


def _rare(k: int, n: int) -> str:
    return ("; a rare budget: expect many trials rejected before training" if k < RARE_SHARE * n else "")


def _share(k: int, n: int) -> str:
    pct = 100 * k / max(1, n)
    return f"{k} ({pct:.2g}%)" if 0 < pct < 10 else f"{k} ({pct:.0f}%)"


def prepare_proxy_sides(space: SearchSpace, dataset: Dataset, progress=None) -> None:
    """An image folder on disk: resized now, on every core, to each side the proxy can train a
    candidate of ``space`` at (nothing to do in memory, or when the copies exist)."""
    dataset.prepare_sides(proxy_sides(space, dataset.resolution), progress, threads=decode_threads())


def resolve_run(config: SearchConfig, progress=None) -> RunContext:
    """Everything a new run needs, resolved once; fails early (one typed error) on an unknown
    space or device, bad data, an existing run folder or a budget nothing meets.
    ``progress(what, done, total)``: decoding an image folder into its disk cache (first use)
    and resizing it to the proxy's sides."""
    config.validate()
    space = load_space(config.space)
    if config.proxy_kind == "supernet":
        check_supported(space)  # one line before any work
    profiles = [load_device(d) for d in config.devices()]
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SearchError(f"--device names the profile {dup!r} twice ({config.device}); give each device once")
    profile = profiles[0]
    dataset = load_dataset(config.data, seed=config.seed, progress=progress)
    name = config.name or f"{space.name}-{'+'.join(names)}-{time.strftime('%Y%m%d-%H%M%S')}"
    config = replace(config, name=name)
    run_dir = (Path(config.out) / name).resolve()
    if run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
        raise SearchError(f"run folder {run_dir} already exists; continue it with --resume {run_dir} "
                          f"or choose another --name")
    targets = []
    for prof, given in zip(profiles, config.budgets_given()):
        if given is None:
            targets.append(DeviceTarget(prof, *default_budget(prof, dataset.num_classes, dataset.in_channels)))
        else:
            targets.append(DeviceTarget(prof, float(given), "given with --latency-ms"))
    budget_ms, source = targets[0].budget_ms, targets[0].budget_source
    priced = not any(p.measure_missing for p in profiles)  # pricing is cheap: check that anything fits at all
    for t in targets:
        if not t.profile.measure_missing:
            _check_feasible(space, t.profile, dataset.num_classes, config.seed, t.budget_ms, dataset.in_channels,
                            others=tuple(n for n in names if n != t.name))
    notes = _check_footprint(space, tuple(targets), config, dataset.num_classes, dataset.in_channels, priced)
    device = resolve_accelerator(config.accelerator)  # "cuda" without a GPU fails here, before any work
    proxy = replace(config.budget(), device=device, trials_per_device=config.trials_per_gpu)
    prepare_proxy_sides(space, dataset, progress)  # after the checks above
    data_path, data_sum = data_identity(config.data)
    space_path = str(Path(space.source).resolve()) if space.source else ""
    storage = config.storage or f"sqlite:///{run_dir / 'study.db'}"
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_absolute():
        storage = f"sqlite:///{Path(storage[len('sqlite:///'):]).resolve()}"  # relative to where it was given
    meta = RunMeta(
        study_name=name, storage=storage,
        latency_budget_ms=budget_ms, latency_budget_source=source, device_label=profile.label,
        device_provenance=profile.provenance_summary, device_source=profile.source,
        dataset=dataset.describe(), num_classes=dataset.num_classes,
        proxy_budget=asdict(proxy), accelerator=describe_device(device),
        space_source=space_path, space_sha256=sha256_file(space_path) if space_path else "",
        data_path=data_path, data_digest=data_sum,
        device_path=str(Path(profile.path).resolve()) if profile.path else "",
        hwnas_version=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        devices=tuple(DeviceMeta(name=t.name, given=given, label=t.profile.label, provenance=t.profile.provenance,
                                 source=t.profile.source, budget_ms=t.budget_ms, budget_source=t.budget_source,
                                 path=str(Path(t.profile.path).resolve()) if t.profile.path else "")
                      for t, given in zip(targets, config.devices())) if len(targets) > 1 else ())
    return RunContext(config, space, profile, dataset, proxy, budget_ms, source, run_dir, meta, notes,
                      tuple(targets) if len(targets) > 1 else ())


def record_inputs(ctx: RunContext) -> RunContext:
    """Copy the device profile into the new run's folder (``profile/``) and record the copy and
    its digest: a resume, ``nas distill`` and ``nas export`` price candidates with it."""
    if ctx.multi:  # one copy per device: profile/<name>/
        devices = []
        for t, m in zip(ctx.targets, ctx.meta.devices):
            if t.profile.path is not None:
                copy = copy_profile(t.profile.path, ctx.run_dir / PROFILE_DIR / t.name)
                m = replace(m, profile_copy=copy.relative_to(ctx.run_dir).as_posix(), profile_digest=profile_digest(copy))
            devices.append(m)
        first = devices[0]
        return replace(ctx, meta=replace(ctx.meta, devices=tuple(devices), profile_copy=first.profile_copy,
                                         profile_digest=first.profile_digest))
    if ctx.profile.path is None:
        return ctx
    copy = copy_profile(ctx.profile.path, ctx.run_dir / PROFILE_DIR)
    meta = replace(ctx.meta, profile_copy=copy.relative_to(ctx.run_dir).as_posix(),
                   profile_digest=profile_digest(copy))
    return replace(ctx, meta=meta)


def _open_space(config: SearchConfig, meta: RunMeta, allow_changed: bool) -> SearchSpace:
    # a space given as a path is read from where the run found it, whatever the current folder
    space_ref = meta.space_source if is_path_like(config.space) and meta.space_source else config.space
    space = load_space(space_ref)
    if meta.space_sha256 and space.source:
        path = Path(space.source).resolve()
        check_unchanged("space file", path, meta.space_sha256, sha256_file(path), allow_changed)
    return space


def _open_profile(run_dir: Path, config: SearchConfig, meta: RunMeta | DeviceMeta,
                  allow_changed: bool) -> DeviceProfile:
    """The run's copy of its profile (runs written before the copy was kept: by name)."""
    if not meta.profile_copy:
        return load_device(meta.given if isinstance(meta, DeviceMeta) else config.device)
    copy = run_dir / meta.profile_copy
    if not copy.is_file():
        raise SearchError(f"the run's copy of its device profile, {copy}, is missing")
    check_unchanged("device profile copy", copy, meta.profile_digest, profile_digest(copy), allow_changed)
    return load_device(str(copy))


def _open_data(config: SearchConfig, meta: RunMeta, allow_changed: bool, download: bool, progress) -> Dataset:
    """The data the run was made from: by its recorded absolute path (a relative --data works
    from any folder), checked to be what it was before it is read. ``cifar10``: the cache, where
    it is now (downloaded again only where ``download``); ``builtin``: the file this install
    ships (a run folder moved to another machine or install finds it there)."""
    if not meta.data_path:  # a run written before the data was recorded
        return load_dataset(config.data, seed=config.seed, progress=progress, download=download)
    named = config.data == "cifar10"
    if config.data == "builtin":
        path = BUILTIN.resolve()
        check_unchanged("data", path, meta.data_digest, data_digest(path), allow_changed)
        return load_dataset("builtin", seed=config.seed, progress=progress)
    path = (datasets_cache() / CIFAR10_FILE).resolve() if named else Path(meta.data_path)
    if not path.exists():
        if not named:
            raise SearchError(f"the run's data {path} is gone")
        if not download:
            raise SearchError(f"the run's CIFAR-10 cache {path} is gone; nas distill and nas export never "
                              f"download: put {CIFAR10_FILE} back there (or resume the search, which downloads it)")
    fetched = not path.exists()
    if not fetched:
        check_unchanged("data", path, meta.data_digest, data_digest(path), allow_changed)
    dataset = load_dataset("cifar10" if named else str(path), seed=config.seed, progress=progress,
                           download=download)
    if fetched:  # downloaded again just now
        check_unchanged("data", path, meta.data_digest, data_digest(path), allow_changed)
    return dataset


def open_run(run_dir: str | Path, progress=None, allow_changed: bool = False, download: bool = True,
             **overrides) -> RunContext:
    """The context of an existing run folder, from its config.yaml: the space and data it
    recorded (checked unchanged unless ``allow_changed``: else ``RunChangedError`` naming the
    file) and its own copy of the device profile. ``overrides`` may change ``RESUME_OVERRIDES``
    only (None leaves a value as it was). ``download=False``: a ``cifar10`` run whose cache is
    gone is one clear error, never a download (``nas distill``, ``nas export``).
    ``progress(what, done, total)``: as for ``resolve_run``, where the image folder's cache has
    to be made again."""
    bad = sorted(k for k, v in overrides.items() if v is not None and k not in RESUME_OVERRIDES)
    if bad:
        raise SearchError(f"cannot change {', '.join(bad)} when resuming (only {', '.join(RESUME_OVERRIDES)})")
    run_dir = Path(run_dir).resolve()
    config, meta = read_run_config(run_dir)
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
    space = _open_space(config, meta, allow_changed)
    profile = _open_profile(run_dir, config, meta, allow_changed)
    dataset = _open_data(config, meta, allow_changed, download, progress)
    # the device is resolved again where the run is opened (a resume may run on another machine)
    proxy = replace(config.budget(), device=resolve_accelerator(config.accelerator),
                    trials_per_device=config.trials_per_gpu)
    targets = tuple(DeviceTarget(_open_profile(run_dir, config, m, allow_changed), float(m.budget_ms),
                                 m.budget_source) for m in meta.devices)
    if targets:
        profile = targets[0].profile
    return RunContext(config, space, profile, dataset, proxy, float(meta.latency_budget_ms),
                      meta.latency_budget_source, run_dir, meta, targets=targets)
