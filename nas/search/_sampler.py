"""What Optuna is given: the sampler a run uses, and the objective values a trial is told.

The latency budget (and the memory and size budgets when set) reach TPE and NSGA-II as trial
constraints (``nas.search._trials.set_constraints``).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import optuna

from nas.errors import SearchError
from nas.run import SAMPLERS

__all__ = ["make_sampler", "objective_values"]


def make_sampler(name: str, seed: int, trials: int):
    """The latency budget reaches TPE and NSGA-II as a trial constraint (``nas.search._trials.set_constraints``):
    infeasible trials rank below feasible ones, by how far over the budget they are."""
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


def objective_values(objectives, acc: float, latency: float | Sequence[float], size_bytes: float,
                     memory: float) -> list[float]:
    """[accuracy, latency ms, then size and/or memory in MB, in ``objectives`` order]. ``latency``
    a sequence (several devices, one objective each, ``nas.search._driver.latency_steer``): each
    takes the latency objective's place, in order."""
    extra = {"size": size_bytes / 1e6, "memory": memory / 1e6}
    lat = [float(v) for v in latency] if isinstance(latency, Sequence) else [latency]
    return [acc, *lat] + [extra[o] for o in objectives[2:]]
