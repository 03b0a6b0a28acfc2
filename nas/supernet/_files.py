"""Where a run keeps its supernet: ``<run>/supernet/`` holds ``weights.pt`` (the trained
supernet, ``Supernet.to_bytes``), ``training.json`` (what trained it: budget, seed, steps,
seconds, the largest member, the weights' digest) and, while training, ``checkpoint.pt``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from nas.errors import SupernetError
from nas.space import SearchSpace
from nas.supernet._supernet import Supernet
from nas.supernet._train import SupernetBudget, SupernetTraining

__all__ = ["supernet_dir", "save_supernet", "load_supernet", "read_training", "SUPERNET_DIR"]

SUPERNET_DIR = "supernet"


def supernet_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / SUPERNET_DIR


def save_supernet(run_dir: str | os.PathLike, net: Supernet, training: SupernetTraining,
                  budget: SupernetBudget, seed: int) -> dict:
    """Write the trained supernet and its record (atomically: a reader never sees half a
    file); returns the record."""
    d = supernet_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    record = {"space": net.space.name, "digest": net.digest(), "seed": seed, "budget": asdict(budget),
              "training": asdict(training)}
    for name, data in (("weights.pt", net.to_bytes()), ("training.json", json.dumps(record, indent=1).encode())):
        tmp = d / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, d / name)
    return record


def read_training(run_dir: str | os.PathLike) -> dict | None:
    """The record of the run's trained supernet, or None when it has none (yet)."""
    p = supernet_dir(run_dir) / "training.json"
    if not p.exists() or not (supernet_dir(run_dir) / "weights.pt").exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise SupernetError(f"{p} is damaged ({exc}); delete {p.parent} to train the supernet again") from None


def load_supernet(run_dir: str | os.PathLike, space: SearchSpace, map_location: str = "cpu") -> Supernet:
    """The run's trained supernet (SupernetError when it has none or it is damaged)."""
    p = supernet_dir(run_dir) / "weights.pt"
    if not p.exists():
        raise SupernetError(f"{Path(run_dir)} has no trained supernet ({p} is missing)")
    try:
        blob = p.read_bytes()
        return Supernet.from_bytes(blob, space, map_location=map_location)
    except SupernetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a damaged one
        raise SupernetError(f"{p} is damaged ({type(exc).__name__}); delete {p.parent} to train again") from None
