"""Training a run's supernet where the search's workers run (Ray), once per run: reused when
the run folder already holds one trained with the same budget and seed, continued from its
checkpoint when a training was interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from nas.data import Dataset
from nas.space import Candidate, SearchSpace
from nas.supernet._files import load_supernet, read_training, save_supernet, supernet_dir
from nas.supernet._supernet import Supernet
from nas.supernet._train import SupernetBudget, SupernetTraining, train_supernet

__all__ = ["train_on_ray"]


def train_on_ray(space: SearchSpace, dataset: Dataset, budget: SupernetBudget, seed: int, run_dir: Path, *,
                 allow: Callable[[Candidate], bool] | None = None, workers: int = 1, threads: int = 1,
                 device: str = "cpu",
                 progress: Callable[[int, int, float], None] | None = None) -> tuple[Supernet, dict]:
    """The run's trained supernet and its record (``read_training``): loaded when ``run_dir``
    already holds one of this budget and seed, else trained (continuing ``checkpoint.pt``),
    saved in ``<run>/supernet/`` and returned. ``progress(step, total, seconds)``.

    TODO(ray): today this trains in the calling process; it is to run as a Ray task (one GPU or
    ``threads`` CPUs) and, with ``workers`` > 1, data-parallel with Ray Train's TorchTrainer."""
    from dataclasses import asdict

    record = read_training(run_dir)
    if record is not None and record.get("budget") == asdict(budget) and record.get("seed") == seed:
        return load_supernet(run_dir, space, map_location=device), record
    torch.manual_seed(seed)
    net = Supernet(space, dataset.num_classes, dataset.in_channels).to(device)
    training: SupernetTraining = train_supernet(net, dataset, budget, seed, allow=allow,
                                                checkpoint=supernet_dir(run_dir) / "checkpoint.pt",
                                                progress=progress, threads=threads)
    record = save_supernet(run_dir, net, training, budget, seed)
    (supernet_dir(run_dir) / "checkpoint.pt").unlink(missing_ok=True)
    return net, record
