"""Learning a device's latency from whole-network timings (``nas profile fit``).

The model's capacity grows with the data, and k-fold cross-validation on the timings decides
how much of it to use:

- ``scale``: the prior profile's whole prediction (its table, estimator and calibration) times
  one factor (a handful of timings);
- ``kinds``: one coefficient per feature kind of the estimator (per-layer overhead, dense
  MACs, depthwise MACs, activation and weight traffic, per precision), ridge-regularised
  toward the scaled prior, plus a per-network offset;
- ``ops``: ``kinds`` plus one additive correction per distinct operator seen in the timings,
  ridge-regularised toward zero (with many timings this approaches a per-(layer, op) table,
  while unseen operators still get the ``kinds`` model).

Every fit minimises relative error (a 10% miss counts the same on a 2 ms and a 50 ms network),
squared (``l2``) or, by iteratively reweighted least squares, close to absolute (``l1``: less
pulled by timings taken in another power state, as about 30% of the Pixel 2 timings in the HELP
data are; BENCHMARKS.md).
The reported error is the cross-validated error of the chosen configuration, computed on the
operators the search will price (the candidates' own class and input-channel counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import scipy.optimize
import scipy.stats

from nas.errors import NasError
from nas.latency._estimator import FEATURES, OPTIONAL, Estimator, op_features
from nas.space import OpSpec

__all__ = ["WholeNetworkFit", "fit_whole_networks", "error_stats", "kendall_tau"]

# (level, ridge on the feature coefficients, ridge on the per-op corrections, loss)
GRID = [("scale", 0.0, 0.0, "l2")] + [("kinds", lk, 0.0, "l2") for lk in (0.01, 0.1, 1.0, 10.0)] + \
       [("ops", lk, lo, "l2") for lk in (0.01, 0.1, 1.0) for lo in (0.01, 0.1, 1.0, 10.0)] + \
       [("kinds", lk, 0.0, "l1") for lk in (0.01, 0.1)] + [("ops", 0.01, lo, "l1") for lo in (0.1, 1.0)]
ROBUST_ITERS = 8
# the fewest timings a level may be chosen from: cross-validation on a handful of networks
# cannot tell 10 free coefficients from one (5 published Pixel 1 timings "preferred" kinds by
# 0.4 points of CV error), so capacity only opens up as the data grows
MIN_TIMINGS = {"scale": 3, "kinds": 10, "ops": 50}
FOLDS = 5


@dataclass
class WholeNetworkFit:
    level: str
    ridge_kinds: float
    ridge_ops: float
    loss: str
    estimator: Estimator
    op_ms: dict[str, float]   # fitted latency of each operator seen in the timings (level "ops")
    offset_ms: float
    cv: dict                  # cross-validated error of the chosen configuration
    tried: list[dict] = field(default_factory=list)  # every configuration's CV MAPE
    scale: float | None = None  # level "scale": the factor on the prior's whole prediction
    rejected: list[dict] = field(default_factory=list)  # better-by-CV configurations a check refused


def kendall_tau(a, b) -> float:
    """Kendall's tau-b (SciPy), nan when either sequence is constant or shorter than 2 (said
    without SciPy's warning: one validation network is a user's choice, not a fault)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(scipy.stats.kendalltau(a, b).statistic)


def error_stats(pred: np.ndarray, y: np.ndarray) -> dict:
    """MAPE, median APE, share within ±10% and Kendall tau of predictions against timings."""
    e = np.abs(np.asarray(pred, float) / np.asarray(y, float) - 1)
    tau = kendall_tau(pred, y) if len(y) > 2 else float("nan")
    return {"mape_pct": round(float(e.mean() * 100), 2), "median_ape_pct": round(float(np.median(e) * 100), 2),
            "within_10pct": round(float(np.mean(e <= 0.10)), 3),
            "kendall_tau": round(float(tau), 3) if np.isfinite(tau) else None}


class _Design:
    """Per-network features: summed estimator features (F) and counts of each distinct op (C)."""

    def __init__(self, nets: list[list[tuple[OpSpec, int]]], prior: Estimator,
                 prior_ms: np.ndarray | None):
        self.keys: list[str] = []
        index: dict[str, int] = {}
        F = np.zeros((len(nets), len(FEATURES)))
        rows = []
        self.op_prior: dict[str, float] = {}
        for i, net in enumerate(nets):
            counts: dict[int, int] = {}
            for op, eb in net:
                F[i] += op_features(op, eb)
                key = op.key if eb == op.bits else replace(op, bits=eb).key
                if key not in index:
                    index[key] = len(self.keys)
                    self.keys.append(key)
                counts[index[key]] = counts.get(index[key], 0) + 1
                if key not in self.op_prior:
                    self.op_prior[key] = op_features(op, eb)
            rows.append(counts)
        for term in OPTIONAL:  # a whole-network fit keeps an optional term only where its prior has it
            for i, f in enumerate(FEATURES):
                if f.endswith(f".{term}") and not prior.coef.get(f):
                    F[:, i] = 0.0
        self.used = np.abs(F).sum(0) > 0
        self.F = F[:, self.used]
        self.C = np.zeros((len(nets), len(self.keys)))
        for i, counts in enumerate(rows):
            for j, n in counts.items():
                self.C[i, j] = n
        self.p = prior.vector()[self.used]
        self.prior_ms = self.F @ self.p if prior_ms is None else np.asarray(prior_ms, float)
        if not np.any(self.p > 0):
            raise NasError("the prior profile's estimator has no coefficients for these operators")


def _solve(d: _Design, idx: np.ndarray, y: np.ndarray, level: str, lk: float, lo: float,
           loss: str = "l2"):
    model = _solve_weighted(d, idx, y, level, lk, lo, np.ones(len(idx)))
    if loss == "l1" and level != "scale":
        for _ in range(ROBUST_ITERS):
            e = np.abs(_predict(d, idx, model) / y[idx] - 1)
            model = _solve_weighted(d, idx, y, level, lk, lo, 1.0 / np.sqrt(np.maximum(e, 0.02)))
    return model


def _solve_weighted(d: _Design, idx: np.ndarray, y: np.ndarray, level: str, lk: float, lo: float,
                    rw: np.ndarray):
    """Least squares on relative error, row ``i`` weighted by ``rw[i]`` (IRLS)."""
    yt = y[idx]
    w = rw / yt
    if level == "scale":
        base = d.prior_ms[idx]
        return None, 0.0, None, float(np.sum(base * w * rw) / np.sum((base * w) ** 2))
    base = d.F[idx] @ d.p
    s = float(np.sum(base * w * rw) / np.sum((base * w) ** 2))  # (weighted) relative least squares scale
    nf, nc = d.F.shape[1], (len(d.keys) if level == "ops" else 0)
    n, my = len(idx), float(np.mean(yt))
    A = [np.hstack([d.F[idx], np.ones((n, 1))] + ([d.C[idx]] if nc else [])) * w[:, None]]
    b = [rw.copy()]
    # feature ridge, in units of each feature's typical contribution (ms) relative to the mean
    target = s * d.p
    typ = np.median(d.F[idx], 0) * target
    scale = np.where(target > 0, typ / np.where(target > 0, target, 1.0), 1.0)
    A.append(np.hstack([np.diag(np.sqrt(lk * n) * scale / my), np.zeros((nf, 1 + nc))]))
    b.append(np.sqrt(lk * n) * typ / my)
    if nc:
        A.append(np.hstack([np.zeros((nc, nf + 1)), np.eye(nc) * np.sqrt(lo * n) / my]))
        b.append(np.zeros(nc))
    A, b = np.vstack(A), np.concatenate(b)
    lower = np.concatenate([np.zeros(nf), np.full(1 + nc, -np.inf)])
    sol = scipy.optimize.lsq_linear(A, b, bounds=(lower, np.full(A.shape[1], np.inf)),
                                    method="bvls" if A.shape[1] <= 64 else "trf").x
    return sol[:nf], float(sol[nf]), (sol[nf + 1:] if nc else np.zeros(len(d.keys))), None


def _predict(d: _Design, idx: np.ndarray, model) -> np.ndarray:
    coef, off, r, scale = model
    if scale is not None:
        return scale * d.prior_ms[idx]
    return d.F[idx] @ coef + off + d.C[idx] @ r


def _folds(n: int, seed: int) -> list[np.ndarray]:
    k = min(FOLDS, n)
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def fit_whole_networks(nets: list[list[tuple[OpSpec, int]]], ms: list[float], prior: Estimator,
                       prior_ms: list[float] | None = None, seed: int = 0,
                       accept: Callable[[WholeNetworkFit], str | None] | None = None) -> WholeNetworkFit:
    """Fit a latency model to whole-network timings. ``nets``: each network's operators with
    the precision they execute at; ``ms``: its measured latency; ``prior_ms``: the prior
    profile's prediction for each network (default: its estimator's sum). ``accept``: a check
    of a fitted model (None: accepted, else the reason it is not); configurations are tried
    in order of cross-validated error, and a rejected one gives way to the next (each
    rejection is listed in ``rejected``). If every one is rejected, a NasError gives the
    best one's reason."""
    y = np.asarray(ms, float)
    if len(y) < 3:
        raise NasError(f"need at least 3 measured networks, got {len(y)}")
    d = _Design(nets, prior, prior_ms)
    folds = _folds(len(y), seed)
    all_idx = np.arange(len(y))
    tried, ranked = [], []
    for level, lk, lo, loss in GRID:
        if len(y) < MIN_TIMINGS[level]:
            continue
        pred = np.empty(len(y))
        for fold in folds:
            train = np.setdiff1d(all_idx, fold)
            pred[fold] = _predict(d, fold, _solve(d, train, y, level, lk, lo, loss))
        stats = error_stats(pred, y)
        tried.append({"level": level, "ridge_kinds": lk, "ridge_ops": lo, "loss": loss,
                      "cv_mape_pct": stats["mape_pct"]})
        ranked.append(((level, lk, lo, loss), stats))
    ranked.sort(key=lambda r: r[1]["mape_pct"])  # stable: ties keep the grid's order (simplest first)
    rejected: list[dict] = []
    for (level, lk, lo, loss), stats in ranked:
        fit = _final_fit(d, y, prior, level, lk, lo, loss, stats, folds, tried)
        reason = accept(fit) if accept is not None else None
        if reason is None:
            fit.rejected = rejected
            return fit
        rejected.append({"level": level, "ridge_kinds": lk, "ridge_ops": lo, "loss": loss,
                         "cv_mape_pct": stats["mape_pct"], "reason": reason})
    raise NasError(f"no model these {len(y)} timings support prices every network above its physical floor: "
                   f"{rejected[0]['reason']}; time more networks, smaller ones among them")


def _final_fit(d: _Design, y: np.ndarray, prior: Estimator, level: str, lk: float, lo: float, loss: str,
               stats: dict, folds: list[np.ndarray], tried: list[dict]) -> WholeNetworkFit:
    coef, off, r, scale = _solve(d, np.arange(len(y)), y, level, lk, lo, loss)
    full = prior.vector().copy()
    if coef is not None:
        full[d.used] = coef
    est = Estimator({f: float(c) for f, c in zip(FEATURES, full)})
    op_ms = {}
    if level == "ops":
        for j, key in enumerate(d.keys):
            base = float(d.op_prior[key][d.used] @ coef)
            # an op's latency stays positive: a correction may not remove more than 95% of it
            op_ms[key] = max(base + float(r[j]), 0.05 * base) if base > 0 else max(float(r[j]), 1e-4)
    cv = {"method": f"{len(folds)}-fold cross-validation over {len(y)} whole-network timings",
          "entries": int(len(y)), **stats}
    return WholeNetworkFit(level, lk, lo, loss, est, op_ms, off, cv, tried, scale)
