"""Zero-cost scores: rank candidates without training.

``naswot`` is the score of Mellor et al., "Neural Architecture Search without Training" (ICML
2021): the log-determinant of the kernel of binary activation codes of one minibatch at
initialisation (how differently the untrained network partitions the inputs). Higher is
better. It costs one forward pass. Used by ``benchmarks/proxy_fidelity.py`` to test whether it
helps the short proxy as a tie-breaker or a second ranking signal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nas.data import Dataset
from nas.space import Candidate

__all__ = ["naswot"]

_ACTS = (nn.ReLU, nn.ReLU6, nn.Hardswish)


@torch.no_grad()
def naswot(candidate: Candidate | str, dataset: Dataset, seed: int = 0, batch_size: int = 64,
           resolution: int | None = None) -> float:
    """NASWOT score of ``candidate`` (built at its proxy input side, as the proxy trains it),
    on ``batch_size`` training images chosen by ``seed``."""
    from nas.models import build_model
    from nas.space import parse_candidate
    from nas.train import proxy_resolution

    if isinstance(candidate, str):
        candidate = parse_candidate(candidate)
    res = resolution or proxy_resolution(candidate, dataset.resolution)
    data = dataset.at_resolution(res)
    torch.manual_seed(seed)
    model = build_model(candidate, data.num_classes, data.in_channels, resolution=data.resolution).train()
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data.x_train), size=min(batch_size, len(data.x_train)), replace=False))
    x = torch.from_numpy(data.normalize(data.x_train[idx]))
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_m, _inp, out):
        c = (out.reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(c @ c.T + (1 - c) @ (1 - c).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _ACTS)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")
