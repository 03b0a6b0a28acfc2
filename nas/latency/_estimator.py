"""Latency estimator: a linear model over the primitive layers of an operator.

Each OpSpec is decomposed into primitive layers (``OpSpec.layers()``: dense/pointwise convs,
depthwise convs, pooling and element-wise work). Its features, per executed precision (float or int8), are:

- ``layers``   number of primitive layers (fixed per-layer overhead: dispatch, packing)
- ``dense``    MACs of dense / pointwise / grouped convs and linear layers (millions)
- ``dw``       MACs of depthwise convs (millions): far lower efficiency than dense MACs
- ``act``      activation traffic, bytes read + written by every layer (MB)
- ``weights``  weight bytes (MB)
- ``dw7``      MACs of depthwise convs with kernels of 7 or more (millions), *again*: the extra
               cost of a kernel too big for the runtime's single-pass depthwise code. LiteRT's
               XNNPACK on x86 ran a 7x7 depthwise at 4.6x (fp32) and 15x (int8) the time per
               MAC of a 5x5 (BENCHMARKS.md, the onboarding loop); without this term a fitted
               estimator priced 7x7 int8 blocks at 0.03x their timing. Profiles whose
               coefficients predate it (hardware facts, older tables) leave it at 0: unchanged.

latency_ms = sum(coef[f] * feature[f]). From hardware facts the coefficients are
1 / (peak x efficiency), 1 / bandwidth and an overhead (``Estimator.from_hardware``); from a
measured table they are fitted by non-negative least squares on relative error
(``Estimator.fit``), so the same model fills a measured table's gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from nas.space import FLOAT_BITS, OpSpec

__all__ = ["Estimator", "FEATURES", "op_features", "nnls", "loo_errors", "select_terms", "OPTIONAL"]

BASE = ("layers", "dense", "dw", "act", "weights", "dw7")
FEATURES = tuple(f"{p}.{b}" for p in ("f32", "i8") for b in BASE)
_DENSE = ("conv", "linear")  # dense, grouped and pointwise convolutions, linear layers


def op_features(op: OpSpec, exec_bits: int | None = None) -> np.ndarray:
    """Feature vector of ``op`` executed at ``exec_bits`` (default: its own bits; anything
    below 32 counts as integer kernels)."""
    bits = op.bits if exec_bits is None else exec_bits
    integer = bits < FLOAT_BITS
    act_bytes = 1 if integer else 4
    w_bytes = bits / 8 if integer else 4
    v = np.zeros(len(FEATURES))
    off = len(BASE) if integer else 0
    for layer in op.layers():
        v[off + 0] += 1
        if layer.kind in _DENSE:
            v[off + 1] += layer.macs / 1e6
        elif layer.kind == "depthwise":
            v[off + 2] += layer.macs / 1e6
            if layer.kernel >= 7:
                v[off + 5] += layer.macs / 1e6
        v[off + 3] += (layer.in_elems + layer.out_elems) * act_bytes / 1e6
        v[off + 4] += layer.weight_elems * w_bytes / 1e6
    return v


OPTIONAL = ("dw7",)  # terms a fit keeps only where cross-validation says they help (select_terms)
MARGIN = 0.05  # ... by at least this share of the error: pixel1's table gained 1% (8.13% -> 8.03%), noise


def select_terms(X: np.ndarray, y: np.ndarray, prior: "Estimator | None" = None,
                 folds: int = 10) -> tuple[np.ndarray, dict[str, bool]]:
    """``X`` with each optional term (``OPTIONAL``) zeroed unless it lowers the estimator's
    cross-validated error on these rows by ``MARGIN`` or more (k-fold, seeded; mean absolute
    relative error), and which were kept. A term that does not help a table is left out of its fit, so its
    coefficients stay what they were without the term (the phone tables of pixel1 and note10:
    7x7 depthwise costs the same per MAC there; BENCHMARKS.md)."""
    X = np.asarray(X, float)
    kept: dict[str, bool] = {}
    for term in OPTIONAL:
        cols = [FEATURES.index(f"{p}.{term}") for p in ("f32", "i8")]
        if not np.any(X[:, cols]):
            kept[term] = False
            continue
        without = X.copy()
        without[:, cols] = 0
        keep = _cv_error(X, y, prior, folds) < (1 - MARGIN) * _cv_error(without, y, prior, folds)
        kept[term] = bool(keep)
        if not keep:
            X = without
    return X, kept


def _cv_error(X: np.ndarray, y: np.ndarray, prior: "Estimator | None", folds: int) -> float:
    n = len(y)
    k = min(folds, n)
    if k < 2:
        return 0.0
    fold = np.random.default_rng(0).permutation(n) % k
    errs = np.empty(n)
    for f in range(k):
        test = fold == f
        est = Estimator.fit(X[~test], y[~test], prior=prior)
        errs[test] = est.predict_rows(X[test]) / y[test] - 1
    return float(np.mean(np.abs(errs)))


def nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares (SciPy's Lawson-Hanson), with room for ill-conditioned fits."""
    return scipy.optimize.nnls(A, b, maxiter=50 * max(1, A.shape[1]))[0]


def loo_errors(X: np.ndarray, y: np.ndarray, prior: "Estimator | None" = None,
               ridge: float = 1e-3) -> np.ndarray:
    """Signed relative error of each row predicted by an estimator fitted on the other rows."""
    errs = np.empty(len(y))
    for i in range(len(y)):
        mask = np.arange(len(y)) != i
        est = Estimator.fit(X[mask], y[mask], prior=prior, ridge=ridge)
        errs[i] = est.predict_rows(X[i:i + 1])[0] / y[i] - 1
    return errs


@dataclass
class Estimator:
    coef: dict[str, float]

    def vector(self) -> np.ndarray:
        return np.array([self.coef.get(f, 0.0) for f in FEATURES])

    def predict(self, op: OpSpec, exec_bits: int | None = None) -> float:
        return float(op_features(op, exec_bits) @ self.vector())

    def predict_rows(self, X: np.ndarray) -> np.ndarray:
        return X @ self.vector()

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, prior: "Estimator | None" = None,
            ridge: float = 1e-3) -> "Estimator":
        """Fit coefficients to rows X (features) and latencies y, minimising relative error.
        Features absent from every row keep the prior's value (or 0). A small ridge towards
        the prior keeps rarely-seen features sane."""
        X, y = np.asarray(X, float), np.asarray(y, float)
        used = np.abs(X).sum(0) > 0
        p = prior.vector() if prior is not None else np.zeros(len(FEATURES))
        Wx = X[:, used] / y[:, None]
        wb = np.ones(len(y))
        if prior is not None and ridge > 0:
            scale = np.sqrt(ridge * len(y))
            # ridge rows: coefficient_i * s_i ~ prior_i * s_i, scaled by typical feature size
            typ = np.median(np.where(X[:, used] > 0, X[:, used], np.nan), axis=0)
            typ = np.nan_to_num(typ, nan=1.0)
            R = np.diag(scale * typ / np.median(y))
            Wx = np.vstack([Wx, R])
            wb = np.concatenate([wb, (R @ p[used])])
        sol = nnls(Wx, wb)
        coef = p.copy()
        coef[used] = sol
        return cls({f: float(c) for f, c in zip(FEATURES, coef)})

    @classmethod
    def from_hardware(cls, *, fp32_macs_per_s: float, int8_macs_per_s: float,
                      dense_eff: float, dw_eff: float, bandwidth_bytes_per_s: float,
                      layer_overhead_s: float, int8_dense_eff: float | None = None,
                      int8_dw_eff: float | None = None) -> "Estimator":
        """Coefficients from facts: time = MACs / (peak x efficiency) + bytes / bandwidth
        + a fixed overhead per layer. Units: ms per million MACs, ms per MB, ms per layer."""
        c = {}
        for prefix, peak, de, we in (("f32", fp32_macs_per_s, dense_eff, dw_eff),
                                     ("i8", int8_macs_per_s, int8_dense_eff or dense_eff,
                                      int8_dw_eff or dw_eff)):
            c[f"{prefix}.layers"] = layer_overhead_s * 1e3
            c[f"{prefix}.dense"] = 1e6 / (peak * de) * 1e3
            c[f"{prefix}.dw"] = 1e6 / (peak * we) * 1e3
            c[f"{prefix}.act"] = 1e6 / bandwidth_bytes_per_s * 1e3
            c[f"{prefix}.weights"] = 1e6 / bandwidth_bytes_per_s * 1e3
        return cls(c)
