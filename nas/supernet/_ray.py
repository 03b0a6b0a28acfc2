"""Training a run's supernet where the search's workers run (Ray), once per run: reused when
the run folder already holds one trained with the same budget and seed, continued from its
checkpoint when a training was interrupted (``kill -9`` included).

- ``workers == 1``: one Ray task (``threads`` CPUs, or one GPU on CUDA) trains it;
- ``workers > 1``: data-parallel with Ray Train's ``TorchTrainer`` (one process per worker,
  gloo on the CPU, NCCL on GPUs), launched from a Ray task so that the caller can wait on it,
  poll its progress and cancel it like the single task. Ray Train keeps its files in
  ``<run>/supernet/ray/``.

The task (rank 0) writes the checkpoint, the progress file ``<run>/supernet/progress.json``
(step, total, seconds; atomically) that the caller polls to call ``progress``, and the result
(``save_supernet``), which the caller loads. A failed training comes back as one
``SupernetError`` with its reason, never as Ray's traceback.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from nas.data import Dataset
from nas.errors import SupernetError
from nas.space import Candidate, SearchSpace
from nas.supernet._files import load_supernet, read_training, save_supernet, supernet_dir
from nas.supernet._supernet import Supernet
from nas.supernet._train import SupernetBudget, SupernetTraining, train_supernet

__all__ = ["train_on_ray", "PROGRESS_FILE", "RAY_DIR"]

PROGRESS_FILE = "progress.json"
RAY_DIR = "ray"  # Ray Train's storage (data-parallel runs), inside <run>/supernet/
_POLL_S = 0.5


def train_on_ray(space: SearchSpace, dataset: Dataset, budget: SupernetBudget, seed: int, run_dir: Path, *,
                 allow: Callable[[Candidate], bool] | None = None, workers: int = 1, threads: int = 1,
                 device: str = "cpu",
                 progress: Callable[[int, int, float], None] | None = None) -> tuple[Supernet, dict[str, Any]]:
    """The run's trained supernet and its record (``read_training``): loaded when ``run_dir``
    already holds one of this budget and seed, else trained on Ray (continuing ``checkpoint.pt``),
    saved in ``<run>/supernet/`` and returned on ``device``. ``progress(step, total, seconds)``
    is called in this process while the training runs (from its progress file).

    Uses the Ray the caller initialized, else starts a local one for the call (``workers *
    threads`` CPUs, no dashboard) and shuts it down after. Raises SupernetError when the
    training fails (a non-finite loss, a worker that died) or Ray lacks the resources."""
    record = read_training(run_dir)
    if record is not None and budget.matches(record.get("budget")) and record.get("seed") == seed:
        return load_supernet(run_dir, space, map_location=device), record
    if workers < 1 or threads < 1:
        raise SupernetError(f"supernet training needs at least 1 worker and 1 thread (got workers={workers}, "
                            f"threads={threads})")
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        raise SupernetError("Ray is not installed: pip install 'ray[default,train]>=2.30'") from None
    run_dir = Path(run_dir).resolve()  # Ray Train's workers run in another working directory
    folder = supernet_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    progress_file = folder / PROGRESS_FILE
    progress_file.unlink(missing_ok=True)  # an interrupted training's: the caller sees only this one's
    cuda = str(device).startswith("cuda")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=workers * threads, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
        started = True
    try:
        _check_resources(ray, workers, threads, cuda)
        task: Any
        # on a cluster the task runs on this node: it writes the run folder, which may be local to it
        # (data-parallel workers on other nodes need the run folder on storage they all share)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=cuda)  # a GPU may be elsewhere
        if workers == 1:
            task = ray.remote(num_cpus=threads, num_gpus=1 if cuda else 0, max_retries=0,
                              scheduling_strategy=here)(_train_task)
        else:  # the launcher only waits on Ray Train's workers, which hold the resources
            task = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=here)(_train_data_parallel)
        ref = task.remote(space, dataset, budget, seed, str(run_dir), allow, threads, cuda, workers)
        _wait(ray, ref, progress_file, progress)
    finally:
        if started:
            ray.shutdown()
    net = load_supernet(run_dir, space, map_location=device)
    record = read_training(run_dir)
    assert record is not None  # written by the task before it returned
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    progress_file.unlink(missing_ok=True)
    return net, record


def _check_resources(ray: Any, workers: int, threads: int, cuda: bool) -> None:
    """Refuse a training Ray can never schedule (it would wait for ever)."""
    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
    if cpus < workers * threads:
        raise SupernetError(f"the supernet training asks for {workers * threads:g} CPUs ({workers} worker(s) x "
                            f"{threads} thread(s)); Ray has {cpus:g}")
    if cuda and gpus < workers:
        raise SupernetError(f"the supernet training asks for {workers} GPU(s) on CUDA; Ray has {gpus:g}")


def _wait(ray: Any, ref: Any, progress_file: Path, progress: Callable[[int, int, float], None] | None) -> None:
    """Wait for the task, passing its progress file's news to ``progress``; Ctrl-C cancels it."""
    last = 0
    try:
        while True:
            ready, _ = ray.wait([ref], timeout=_POLL_S)
            if progress is not None:
                last = _report(progress_file, progress, last)
            if ready:
                break
        ray.get(ref)
    except KeyboardInterrupt:
        ray.cancel(ref, force=True)
        raise
    except ray.exceptions.RayError as exc:
        raise SupernetError(_reason(exc)) from None


def _report(progress_file: Path, progress: Callable[[int, int, float], None], last: int) -> int:
    try:
        news = json.loads(progress_file.read_text())
        step, total, seconds = int(news["step"]), int(news["total"]), float(news["seconds"])
    except (OSError, ValueError, KeyError, TypeError):  # not written yet
        return last
    if step > last:
        progress(step, total, seconds)
        return step
    return last


def _reason(exc: BaseException) -> str:
    """One line for a failed training: the first real cause under Ray's and Ray Train's wrappers."""
    import ray

    cause: BaseException = exc
    for _ in range(8):  # a task error holding a training error holding a worker's task error ...
        if isinstance(cause, ray.exceptions.RayTaskError) and getattr(cause, "cause", None) is not None:
            cause = cause.cause
        elif getattr(cause, "worker_failures", None):  # Ray Train's WorkerGroupError: per rank
            failures = cause.worker_failures  # type: ignore[attr-defined]
            cause = failures[min(failures)]
        elif getattr(cause, "controller_failure", None) is not None:  # Ray Train's ControllerError
            cause = cause.controller_failure  # type: ignore[attr-defined]
        else:
            break
    lines = [ln for ln in str(cause).splitlines() if ln.strip()]
    text = lines[-1].strip() if lines else type(cause).__name__
    if isinstance(cause, SupernetError):
        return str(cause)
    if isinstance(cause, FloatingPointError):
        return f"the supernet training diverged ({text}); lower the supernet learning rate"
    if isinstance(cause, ray.exceptions.OutOfMemoryError):
        return "a Ray worker training the supernet was killed for memory; give it fewer workers or a smaller batch"
    if isinstance(cause, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                          ray.exceptions.RayActorError)):
        return f"a Ray worker training the supernet died ({text[:200]}); run again to continue from its checkpoint"
    return f"the supernet training failed: {type(cause).__name__}: {text[:300]}"


class _ProgressFile:
    """``progress`` for train_supernet in a Ray task: (step, total, seconds) written atomically,
    at most every quarter second and at the last step."""

    def __init__(self, path: Path):
        self.path, self.written = path, 0.0

    def __call__(self, step: int, total: int, seconds: float) -> None:
        now = time.monotonic()
        if step < total and now - self.written < 0.25:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"step": step, "total": total, "seconds": round(seconds, 3)}))
        os.replace(tmp, self.path)
        self.written = now


def _train(space: SearchSpace, dataset: Dataset, budget: SupernetBudget, seed: int, run_dir: Path,
           allow: Callable[[Candidate], bool] | None, threads: int, device: torch.device | str,
           rank: int = 0, world_size: int = 1) -> tuple[Supernet, SupernetTraining]:
    """One process's share of the training (the whole of it when world_size is 1); rank 0
    writes the checkpoint and the progress file."""
    torch.manual_seed(seed)
    net = Supernet(space, dataset.num_classes, dataset.in_channels).to(device)
    folder = supernet_dir(run_dir)
    training = train_supernet(net, dataset, budget, seed, allow=allow, checkpoint=folder / "checkpoint.pt",
                              progress=_ProgressFile(folder / PROGRESS_FILE) if rank == 0 else None,
                              threads=threads, rank=rank, world_size=world_size)
    return net, training


def _train_task(space: SearchSpace, dataset: Dataset, budget: SupernetBudget, seed: int, run_dir: str,
                allow: Callable[[Candidate], bool] | None, threads: int, cuda: bool, workers: int) -> dict[str, Any]:
    """The Ray task of a one-worker training (on the task's GPU when ``cuda``): saves the result."""
    net, training = _train(space, dataset, budget, seed, Path(run_dir), allow, threads, "cuda" if cuda else "cpu")
    return save_supernet(run_dir, net, training, budget, seed)


def _train_data_parallel(space: SearchSpace, dataset: Dataset, budget: SupernetBudget, seed: int, run_dir: str,
                         allow: Callable[[Candidate], bool] | None, threads: int, cuda: bool,
                         workers: int) -> None:
    """The Ray task that runs a ``workers``-process training with Ray Train's TorchTrainer (and
    waits for it: cancelling this task ends Ray Train's controller and workers, which it owns)."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    config = {"space": space, "dataset": ray.put(dataset), "budget": budget, "seed": seed, "run_dir": run_dir,
              "allow": allow, "threads": threads, "cuda": cuda}
    trainer = TorchTrainer(
        _train_worker, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=cuda, resources_per_worker={"CPU": threads}),
        run_config=RunConfig(name="supernet", storage_path=str(supernet_dir(run_dir) / RAY_DIR),
                             failure_config=FailureConfig(max_failures=0)))
    trainer.fit()  # raises Ray Train's TrainingFailedError when a worker fails


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: its rank's share of every batch, gradients averaged over the
    process group Ray Train set up. The ranks' weights must agree at the end (checked); rank 0
    saves the result and writes every rank's digest to ``<run>/supernet/ray/ranks.json``."""
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    ctx = ray.train.get_context()
    rank, world_size = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device() if config["cuda"] else torch.device("cpu")
    dataset: Dataset = ray.get(config["dataset"])
    run_dir = Path(config["run_dir"])
    net, training = _train(config["space"], dataset, config["budget"], config["seed"], run_dir, config["allow"],
                 config["threads"], device, rank=rank, world_size=world_size)
    digests: list[Any] = [None] * world_size
    dist.all_gather_object(digests, net.digest())
    if rank == 0:
        ranks = supernet_dir(run_dir) / RAY_DIR / "ranks.json"
        ranks.parent.mkdir(parents=True, exist_ok=True)
        ranks.write_text(json.dumps({"digests": digests}))
        if len(set(digests)) != 1:
            raise SupernetError(f"the data-parallel workers ended with different weights ({digests}); "
                                "the result is not saved")
        save_supernet(run_dir, net, training, config["budget"], config["seed"])
