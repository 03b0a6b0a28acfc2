"""Where training runs: ``--accelerator auto|cpu|cuda`` and ``--trials-per-gpu``.

``auto`` is CUDA when torch sees a GPU, else the CPU. ``cuda`` on a machine without one is one
clear error. Proxy, teacher and winner training run on the chosen device by the same code as on
the CPU (``nas.train._proxy``: model and batches on the device, no host synchronisation per step); the
Ray tasks of a search ask for ``1 / trials_per_gpu`` of a GPU each, so K trials share one.

Determinism on CUDA (``deterministic_cuda``, called before any training on a GPU): cuDNN is
asked for deterministic algorithms and no autotuning, cuBLAS for a fixed workspace
(``CUBLAS_WORKSPACE_CONFIG=:4096:8``, unless the user set one), and PyTorch's deterministic mode
is on with warnings only. The batches are the same as on the CPU for a seed (``nas.data._feed``).
What CUDA still does not promise, per PyTorch's reproducibility notes: the backward pass of
adaptive average pooling (every network's head) accumulates with atomic adds, so two runs with
one seed may differ in the last bits of some gradients, and a proxy accuracy by an image or so;
results differ between GPU models, CUDA versions and against the CPU. Not measured here: no
GPU was lent to the sessions that built this (BENCHMARKS.md says what ran where).
"""

from __future__ import annotations

import os

import torch

from nas.errors import NasError

__all__ = ["ACCELERATORS", "resolve_accelerator", "describe_device", "gpus_here", "deterministic_cuda"]

ACCELERATORS = ("auto", "cpu", "cuda")


def gpus_here() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_accelerator(name: str) -> str:
    """"cpu" or "cuda" for ``name`` in ACCELERATORS; one NasError otherwise."""
    if name not in ACCELERATORS:
        raise NasError(f"--accelerator {name!r}: choose one of {', '.join(ACCELERATORS)}")
    if name == "auto":
        return "cuda" if gpus_here() else "cpu"
    if name == "cuda" and not gpus_here():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise NasError(f"--accelerator cuda: torch {torch.__version__} ({build}) sees no CUDA GPU on this "
                       f"machine; use --accelerator cpu (or auto)")
    return name


def describe_device(device: str) -> str:
    """A short phrase for cards and logs: what trained the network."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"CUDA GPU ({torch.cuda.get_device_name(torch.device(device))})"
    return "CPU"


def deterministic_cuda() -> None:
    """Ask CUDA for repeatable training (see the module docstring); idempotent."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
