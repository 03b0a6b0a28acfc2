"""Training and scoring a network: the proxy, the accelerator choice, model checkpoints."""

from nas.train._accel import describe_device, deterministic_cuda, gpus_here, resolve_accelerator
from nas.train._checkpoint import load_checkpoint, load_state, save_checkpoint, save_state
from nas.train._proxy import (
    ProxyBudget,
    ProxyResult,
    estimate_training_bytes,
    evaluate_batches,
    evaluate_model,
    evaluate_proxy,
    make_optimizer,
    proxy_resolution,
    proxy_sides,
    recalibrate_bn,
    train_model,
)

__all__ = [
    "ProxyBudget",
    "ProxyResult",
    "describe_device",
    "deterministic_cuda",
    "estimate_training_bytes",
    "evaluate_batches",
    "evaluate_model",
    "evaluate_proxy",
    "gpus_here",
    "load_checkpoint",
    "load_state",
    "make_optimizer",
    "proxy_resolution",
    "proxy_sides",
    "recalibrate_bn",
    "resolve_accelerator",
    "save_checkpoint",
    "save_state",
    "train_model",
]
