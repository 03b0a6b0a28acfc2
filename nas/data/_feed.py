"""Training batches made on the training device (``--accelerator cuda``).

``device_batches`` serves one epoch of augmented, normalised batches as tensors on the device,
in one of two ways:

- **resident**: the split's uint8 images are copied to the GPU once, when they take at most
  ``RESIDENT_SHARE`` of its free memory divided among the trials sharing it; per batch only the
  indices and the augmentation draws (a few hundred bytes) travel.
- **streamed** (otherwise: a folder larger than the GPU's share): a background thread reads the
  next uint8 batches (from RAM or, for an image folder, from the disk cache) into pinned host
  memory while the GPU trains on the current one; the copies are non-blocking.

Either way the random crop, the flip and the normalisation run on the device, batched (one
gather, no per-image loop), and the draws come from the same numpy ``Generator`` in the same
order as ``Dataset.batches``: a seed gives the same images, in the same order, augmented the same
way, on any device. On the CPU the result is bit-identical to ``Dataset.batches`` (tested); the
CPU path of training keeps using ``Dataset.batches`` directly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch

from nas.data._datasets import crop_flip_draws

__all__ = ["device_batches", "augment_batch", "fits_on_device", "RESIDENT_SHARE", "PREFETCH"]

RESIDENT_SHARE = 0.25  # at most this share of the device's free memory holds a resident split
PREFETCH = 3  # streamed: batches read ahead of the one training


def fits_on_device(nbytes: int, device: torch.device, sharing: int = 1) -> bool:
    """Whether ``nbytes`` of images may live on ``device`` (its free memory, split among
    ``sharing`` trials, times ``RESIDENT_SHARE``)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= RESIDENT_SHARE * free / max(1, sharing)


def augment_batch(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, pad: int = 0,
                  dy: torch.Tensor | None = None, dx: torch.Tensor | None = None,
                  flip: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW (channels-last memory), normalised; with ``dy`` /
    ``dx`` / ``flip`` given, first a crop of each image after zero padding by ``pad`` at offset
    (dy, dx), mirrored where ``flip``: the arithmetic of ``nas.data._datasets._random_crop_flip`` and
    ``Dataset.normalize``, on whatever device ``x`` is on."""
    if dy is not None:
        n, h, w, _ = x.shape
        padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
        ar_h = torch.arange(h, device=x.device)
        ar_w = torch.arange(w, device=x.device)
        rows = dy[:, None] + ar_h
        cols = dx[:, None] + torch.where(flip[:, None], (w - 1) - ar_w, ar_w)
        x = padded[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    out = (x.to(torch.float32) / 255.0 - mean) / std
    return out.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last already


def _host(a: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def device_batches(dataset, batch_size: int, rng: np.random.Generator, device: torch.device | str,
                   augment: bool = True, limit: int | None = None, resident: bool | None = None,
                   sharing: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled training batches as (float32 NCHW, int64) tensors on ``device``:
    ``Dataset.batches``'s images and augmentation, made on the device (see the module
    docstring). ``resident``: None decides by ``fits_on_device``; True / False force it."""
    device = torch.device(device)
    x_train, y_train = dataset.x_train, dataset.y_train
    n_all = len(x_train)
    n = n_all if limit is None else min(limit, n_all)
    order = rng.permutation(n_all)[:n]
    pad = max(1, dataset.resolution // 8)
    mean = torch.as_tensor(np.asarray(dataset.mean, np.float32), device=device)
    std = torch.as_tensor(np.asarray(dataset.std, np.float32), device=device)
    nbytes = n_all * int(np.prod(x_train.shape[1:]))
    if resident is None:
        resident = fits_on_device(nbytes, device, sharing)
    if resident:
        cache = dataset.__dict__.setdefault("_on_device", {})
        if str(device) not in cache:
            cache.clear()  # one device's copy at a time
            images = x_train if isinstance(x_train, np.ndarray) else x_train[np.arange(n_all)]  # from disk
            cache[str(device)] = (torch.from_numpy(np.ascontiguousarray(images)).to(device),
                                  torch.from_numpy(np.ascontiguousarray(y_train)).to(device))
        xs, ys = cache[str(device)]
        for start in range(0, n, batch_size):
            idx = _host(order[start:start + batch_size], device)
            x = xs.index_select(0, idx)
            if augment:
                dy, dx, flip = (_host(a, device) for a in crop_flip_draws(rng, len(idx), pad))
                yield augment_batch(x, mean, std, pad, dy, dx, flip), ys.index_select(0, idx)
            else:
                yield augment_batch(x, mean, std), ys.index_select(0, idx)
        return
    yield from _streamed(x_train, y_train, order, batch_size, rng, device, augment, pad, mean, std)


_DONE = object()


def _streamed(x_train, y_train, order, batch_size, rng, device, augment, pad, mean, std):
    """The streamed feed: a reader thread draws, reads and pins batches ``PREFETCH`` ahead."""
    q: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()
    pin = device.type == "cuda"

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                arrays = [np.ascontiguousarray(x_train[idx]), np.ascontiguousarray(y_train[idx])]
                if augment:
                    arrays += crop_flip_draws(rng, len(idx), pad)
                tensors = [torch.from_numpy(a) for a in arrays]
                if pin:
                    tensors = [t.pin_memory() for t in tensors]
                if not put(tensors):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    reader = threading.Thread(target=read, name="hwnas-batches", daemon=True)
    reader.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            x, y, *draws = (t.to(device, non_blocking=pin) for t in item)
            yield augment_batch(x, mean, std, pad, *draws), y
    finally:
        stop.set()
        reader.join(timeout=5)
