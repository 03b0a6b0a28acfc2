"""Profiles built from per-block tables measured on phones by other projects.

Supported formats:
- ``proxylessnas``: ProxylessNAS mobile LUT (TFLite, Pixel 1). ``expand`` is the expansion
  ratio, activations ReLU6, no squeeze-excite.
- ``ofa``: Once-for-All MobileNetV3 LUT (TFLite, Note10). ``expand`` is the middle channel
  count; ``se`` and ``hs`` (hard-swish, else ReLU) flags.

Each entry becomes one or more OpSpecs (``Logits`` = global pooling + classifier, ...). The
estimator is fitted to all entries; its leave-one-out error on them is the profile's
validation figure. Entries whose OpSpecs are single ops also enter the table under our keys,
so a network that contains exactly that block uses the measured number.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nas._paths import read_yaml
from nas.errors import LutError
from nas.latency._estimator import Estimator, loo_errors, op_features, select_terms
from nas.space import OpSpec, make_divisible

__all__ = ["parse_lut", "lut_profile_parts"]

_SHAPE = r"(\d+)x(\d+)x(\d+)"


def _ops_for_key(key: str, fmt: str) -> list[OpSpec]:
    m = re.match(rf"^(\w+)-input:{_SHAPE}-output:(?:{_SHAPE}|(\d+))(.*)$", key)
    if not m:
        raise LutError(f"unrecognised LUT key {key!r}")
    kind = m.group(1)
    h, w, cin = int(m.group(2)), int(m.group(3)), int(m.group(4))
    ho = int(m.group(5)) if m.group(5) else 1
    cout = int(m.group(7) or m.group(8))
    rest = dict(re.findall(r"-(\w+):(\d+)", m.group(9) or ""))
    stem_act = "relu6" if fmt == "proxylessnas" else "hswish"
    head_act = "relu6" if fmt == "proxylessnas" else "hswish"
    if kind == "Conv":
        return [OpSpec("conv", h, w, cin, cout, kernel=3, stride=h // ho, act=stem_act)]
    if kind == "Conv_1":
        return [OpSpec("conv", h, w, cin, cout, kernel=1, stride=1, act=head_act)]
    if kind == "Conv_2":  # OFA: the 1x1 conv after pooling = a linear layer with hard-swish
        return [OpSpec("linear", 1, 1, cin, cout, act="hswish")]
    if kind == "AvgPool2D":
        return [OpSpec("gap", h, w, cin, cin)]
    if kind == "Logits":
        if h > 1:  # ProxylessNAS: pooling is part of the logits entry
            return [OpSpec("gap", h, w, cin, cin), OpSpec("linear", 1, 1, cin, cout)]
        return [OpSpec("linear", 1, 1, cin, cout)]
    if kind == "expanded_conv":
        k, s, e = int(rest["kernel"]), int(rest["stride"]), int(rest["expand"])
        if fmt == "proxylessnas":
            hidden = make_divisible(cin * e, 8) if e != 1 else cin
            expand, se, act = e != 1, 0, "relu6"
        else:
            hidden = e
            expand = hidden != cin
            se = make_divisible(hidden // 4, 8) if rest.get("se") == "1" else 0
            act = "hswish" if rest.get("hs") == "1" else "relu"
        return [OpSpec("mbconv", h, w, cin, cout, hidden=hidden, kernel=k, stride=s, se=se,
                       act=act, expand=expand)]
    raise LutError(f"unrecognised LUT entry kind {kind!r} in {key!r}")


def parse_lut(path: Path, fmt: str) -> list[tuple[str, list[OpSpec], float]]:
    """(source key, our ops, mean ms) per entry."""
    raw = read_yaml(path, LutError)
    if not isinstance(raw, dict):
        raise LutError(f"{path}: expected a mapping of block key to timings")
    rows = []
    for key, v in raw.items():
        if not isinstance(v, dict) or not isinstance(v.get("mean"), (int, float)) or v["mean"] <= 0:
            raise LutError(f"{path}: entry {key!r}: needs a positive 'mean' (ms)")
        try:
            ops = _ops_for_key(str(key), fmt)
        except LutError as exc:
            raise LutError(f"{path}: {exc}") from None
        rows.append((str(key), ops, float(v["mean"])))
    return rows


def _design(rows) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([sum(op_features(o) for o in ops) for _, ops, _ in rows])
    y = np.array([ms for _, _, ms in rows])
    return X, y


_PARTS_CACHE: dict[tuple[str, str], tuple] = {}


def lut_profile_parts(path: Path, fmt: str) -> tuple[dict[str, float], Estimator, dict]:
    """(table under our op keys, fitted estimator, validation figures) for a phone LUT."""
    ck = (str(path), fmt)
    if ck in _PARTS_CACHE:
        t, e, v = _PARTS_CACHE[ck]
        return dict(t), e, dict(v)
    if fmt not in ("proxylessnas", "ofa"):
        raise LutError(f"{path}: unknown LUT format {fmt!r} (proxylessnas or ofa)")
    rows = parse_lut(path, fmt)
    X, y = _design(rows)
    X = select_terms(X, y)[0]
    est = Estimator.fit(X, y)
    errs = loo_errors(X, y)
    fit_errs = est.predict_rows(X) / y - 1
    table = {ops[0].key: ms for _, ops, ms in rows if len(ops) == 1}
    validation = {
        "method": f"leave-one-out over the {len(y)} entries of {path.name}",
        "entries": int(len(y)),
        "loo_mape_pct": round(float(np.mean(np.abs(errs)) * 100), 2),
        "loo_median_ape_pct": round(float(np.median(np.abs(errs)) * 100), 2),
        "loo_within_10pct": round(float(np.mean(np.abs(errs) <= 0.10)), 3),
        "fit_mape_pct": round(float(np.mean(np.abs(fit_errs)) * 100), 2),
    }
    _PARTS_CACHE[ck] = (table, est, validation)
    return dict(table), est, dict(validation)
