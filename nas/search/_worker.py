"""The Ray side of a search: the local Ray instance (or a cluster) for the duration of a run,
and the task each worker runs: train one candidate briefly and count it.

The task receives the candidate object itself: it carries its ``SearchSpace``, so a space read
from a YAML path in the driver is the one that runs in every worker (Ray pickles it along).
Exceptions come back to the driver with their type and message (every ``NasError`` pickles).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import torch

from nas.data import Dataset
from nas.errors import SearchError
from nas.models import build_model, model_bytes
from nas.space import Candidate, memory_bytes
from nas.train import ProxyBudget, ProxyResult, evaluate_proxy, gpus_here

__all__ = ["RayPool", "WorkerResult", "evaluate_candidate", "score_from_supernet", "candidate_size", "one_line"]


@dataclass(frozen=True)
class WorkerResult:
    """What a worker task returns: the proxy training's result, the candidate counted (its
    parameters, deployable bytes and peak memory at batch 1) and where it ran."""

    proxy: ProxyResult
    params: int
    bytes: int
    memory: int
    host: str
    node: str  # the Ray node id; "" outside Ray
    pid: int

    @property
    def failed(self) -> bool:
        return self.proxy.failed

    def trial_facts(self) -> dict:
        """The secondary facts a trial record stores of this result (its ``info`` mapping,
        ``nas.search._trials``): JSON values, as Optuna stores user attributes."""
        p = self.proxy
        return {"params": self.params, "bytes": self.bytes, "memory": self.memory, "host": self.host,
                "node": self.node, "pid": self.pid, "steps": p.steps, "train_seconds": p.train_seconds,
                "images_per_second": p.images_per_second, "loss": p.loss, "val_loss": p.val_loss,
                "proxy_seconds": p.seconds, "proxy_side": p.resolution}


def candidate_size(cand: Candidate, num_classes: int, in_channels: int) -> tuple[int, int]:
    """(parameters, deployable bytes) of a candidate, from its built module (~25 ms)."""
    model = build_model(cand, num_classes, in_channels)
    return sum(p.numel() for p in model.parameters()), model_bytes(model)


def evaluate_candidate(cand: Candidate, dataset: Dataset, seed: int, budget: ProxyBudget,
                       resolution: int, start: bytes | None = None, keep_state: bool = False) -> WorkerResult:
    """Runs in a Ray worker: train the candidate briefly (from the checkpoint ``start`` when
    given: a rung of successive halving), count it, say where it ran."""
    torch.set_num_threads(budget.threads)
    res = evaluate_proxy(cand, dataset, seed=seed, budget=budget, resolution=resolution, start=start,
                         keep_state=keep_state)
    return _counted(res, cand, dataset)


def _counted(res: ProxyResult, cand: Candidate, dataset: Dataset) -> WorkerResult:
    """A worker's result: the proxy's, the candidate counted, and where it ran."""
    params, nbytes = candidate_size(cand, dataset.num_classes, dataset.in_channels)
    try:
        import ray

        node = ray.get_runtime_context().get_node_id() or ""
    except Exception:  # not inside Ray (direct call)
        node = ""
    return WorkerResult(res, params, nbytes, memory_bytes(cand, nbytes, dataset.num_classes, dataset.in_channels),
                        socket.gethostname(), node, os.getpid())


_SUPERNETS: dict[str, object] = {}  # digest -> Supernet: loaded once per worker process


def score_from_supernet(cand: Candidate, dataset: Dataset, seed: int, budget: ProxyBudget,
                        weights: list, digest: str) -> WorkerResult:
    """Runs in a Ray worker: score the candidate from the supernet's weights (extract it, re-
    estimate batch norm, validate; no training), count it, say where it ran. ``weights`` is
    ``[ObjectRef]`` of the supernet's bytes (nested in a list, so Ray does not fetch it for every
    task): a worker fetches and loads it once, then keeps it for every later task."""
    from nas.supernet import Supernet, score_candidate

    torch.set_num_threads(budget.threads)
    net = _SUPERNETS.get(digest)
    if net is None:
        import ray

        blob = weights[0] if isinstance(weights[0], bytes) else ray.get(weights[0])
        _SUPERNETS.clear()  # one supernet per worker: a new run's replaces the last one's
        net = _SUPERNETS[digest] = Supernet.from_bytes(blob, cand.search_space, map_location=budget.device)
    res = score_candidate(net, cand, dataset, seed=seed,  # type: ignore[arg-type]
                          bn_batches=budget.bn_recalibration_batches, max_val_images=budget.max_val_images)
    return _counted(res, cand, dataset)


class RayPool:
    """Ray for the duration of a search: a local instance (num_cpus = workers, no dashboard)
    unless an address is given or Ray is already initialised by the caller."""

    def __init__(self, workers: int, address: str | None, threads: int, gpus_per_task: float = 0.0):
        self.workers, self.address, self.threads = workers, address, threads
        self.gpus_per_task = gpus_per_task  # 1/K with --trials-per-gpu K on CUDA; 0 on the CPU
        self.started = False

    def __enter__(self) -> "RayPool":
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is a dependency
            raise SearchError("Ray is not installed: pip install 'ray>=2.9'") from None
        self.ray = ray
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                      configure_logging=True)
            try:
                if self.address:
                    ray.init(address=self.address, **kw)
                else:  # the GPUs torch sees here, when trials train on CUDA
                    ray.init(num_cpus=self.workers, num_gpus=gpus_here() if self.gpus_per_task else 0, **kw)
            except ConnectionError as exc:
                raise SearchError(f"cannot join Ray at {self.address}: {exc}") from None
            self.started = True
        # on a cluster, only nodes with a GPU take GPU trials (Ray schedules by the num_gpus asked)
        self.task = ray.remote(num_cpus=self.threads, num_gpus=self.gpus_per_task, max_retries=0)(evaluate_candidate)
        self.score_task = ray.remote(num_cpus=self.threads, num_gpus=self.gpus_per_task,
                                     max_retries=0)(score_from_supernet)
        self.supernet: tuple[list, str] | None = None  # ([weights ref], digest) with --proxy supernet
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            self.ray.shutdown()

    def submit(self, cand: Candidate, data_ref, seed: int, budget: ProxyBudget, resolution: int,
               start: bytes | None = None, keep_state: bool = False):
        """Train (``--proxy train``) or score from the supernet (``use_supernet``) one candidate."""
        if self.supernet is not None and start is None and not keep_state:
            return self.score_task.remote(cand, data_ref, seed, budget, *self.supernet)
        return self.task.remote(cand, data_ref, seed, budget, resolution, start, keep_state)

    def use_supernet(self, blob: bytes, digest: str) -> None:
        """From now on ``submit`` scores candidates from this supernet (put in the object
        store once) instead of training them."""
        self.supernet = ([self.ray.put(blob)], digest)


def one_line(exc: BaseException) -> str:
    """A short reason for a failed task: Ray wraps a worker's exception in a long message."""
    try:
        import ray

        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            lines = [ln for ln in str(cause).splitlines() if ln.strip()]
            return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:300]
        if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
            return "worker died: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:250]
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
