"""Checkpoints, both formats in one place: a trained network on disk (``model.pt``, teachers: tensors
and plain data only, so ``torch.load(weights_only=True)`` reads it; loading rebuilds the candidate
and checks the weights fit), and a training state as bytes (``save_state``: weights and optimizer
state, which travel through Ray and which successive halving keeps per trial)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch
from torch import nn

from nas._paths import atomic_write
from nas.errors import DistillError, NasError
from nas.models import build_model
from nas.space import Candidate, parse_candidate

__all__ = ["save_checkpoint", "load_checkpoint", "save_state", "load_state"]


def save_checkpoint(path: Path, model, candidate: Candidate, dataset, resolution: int, extra: dict | None = None) -> None:
    """A plain dict of tensors, numbers and strings: ``torch.load(weights_only=True)`` reads it."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blob = {"key": candidate.key, "state_dict": state, "num_classes": dataset.num_classes,
            "in_channels": dataset.in_channels, "resolution": int(resolution),
            "mean": [float(m) for m in dataset.mean], "std": [float(s) for s in dataset.std],
            "class_names": list(dataset.class_names), **(extra or {})}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path: str | Path, space=None):
    """(model in eval mode, checkpoint dict). Only tensors and plain data are unpickled. The
    key is read in ``space`` (a SearchSpace) when it names that space, else in the built-in
    space it names."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(f"checkpoint {path} not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise DistillError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:160]})") from None
    need = {"key", "state_dict", "num_classes", "in_channels", "resolution"}
    if not isinstance(blob, dict) or not need <= set(blob):
        raise DistillError(f"{path}: not an hwnas checkpoint (needs {', '.join(sorted(need))})")
    try:
        key = Candidate.parse(blob["key"])
        cand = space.bind(key) if space is not None and key.space == space.name else parse_candidate(blob["key"])
    except NasError as exc:
        raise DistillError(f"{path}: {exc}") from None
    model = build_model(cand, blob["num_classes"], blob["in_channels"], resolution=blob["resolution"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise DistillError(f"{path}: weights do not fit {blob['key']}: {str(exc).splitlines()[0][:160]}") from None
    return model.eval(), blob


def save_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, **facts) -> bytes:
    """Weights (and optimizer state, for continuing) as bytes: a checkpoint that travels
    through Ray and is written by the driver (``nas.search._halving``)."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": None if optimizer is None else optimizer.state_dict(),
                **facts}, buf)
    return buf.getvalue()


def load_state(blob: bytes) -> dict:
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
