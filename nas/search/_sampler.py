"""What Optuna is given: the sampler a run uses, and the objective values a trial is told.

The latency budget (and the memory and size budgets when set) reach TPE and NSGA-II as trial
constraints (``nas.search._trials.set_constraints``); the bits and keep summaries are what the trial
record shows of a candidate's quantization and pruning.
"""

from __future__ import annotations

import warnings

import optuna

from nas.errors import SearchError
from nas.run import SAMPLERS
from nas.space import Candidate

__all__ = ["make_sampler", "objective_values", "bit_counts", "bits_summary", "keep_summary"]


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


def objective_values(objectives, acc: float, latency: float, size_bytes: float, memory: float) -> list[float]:
    """[accuracy, latency ms, then size and/or memory in MB, in ``objectives`` order]."""
    extra = {"size": size_bytes / 1e6, "memory": memory / 1e6}
    return [acc, latency] + [extra[o] for o in objectives[2:]]


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
