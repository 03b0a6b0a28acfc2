"""Datasets: the built-in Fashion-MNIST subset, CIFAR-10, .npz files and image folders.

Images are kept as uint8 NHWC (in memory, or for image folders in a disk cache:
``nas.data._diskarray``); ``Dataset.batches`` (training) and ``Dataset.eval_batches`` (scoring
the validation or test split, a batch at a time) turn them into float32 NCHW normalised with the
training set's per-channel mean and std, exactly what an exported model expects. A whole split is
never held as one float32 array (2,000 images at 224 px would be 1.2 GB): ``test_arrays`` does
that for a user who asks, and nothing in hwnas calls it. Grayscale data stays one channel:
models are built with ``in_channels=1`` (cheaper than repeating the channel three times, and
honest about the data).

Splits: the search trains on ``train`` and selects on ``val`` (a seeded, stratified share of
the training images, ``val_share``: 2,000 where the data allows); ``test`` is touched only for
final reporting.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from nas.data._diskarray import DiskArray, channel_moments, is_disk, resized, rows
from nas.data._imagefolder import read_folder
from nas.errors import DatasetError

__all__ = ["Dataset", "load_dataset", "CIFAR10_URL", "datasets_cache", "EVAL_BATCH", "EVAL_BATCH_BYTES",
           "SPLITS"]

BUILTIN = Path(__file__).resolve().parent / "_builtin" / "fashion_mnist_subset.npz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FILE = "cifar-10-python.tar.gz"
# A split is scored (``Dataset.eval_batches``) EVAL_BATCH images at a time, fewer where their float32
# pixels would pass EVAL_BATCH_BYTES: at 224 px, 256 images are 154 MB of input and about 1 GB of
# activations in a MobileNetV3-Small, and a folder whose split fills a whole batch peaked 200 MB
# (torch) to 770 MB (onnxruntime) above one whose split did not (BENCHMARKS.md, issue 24).
# 16 MB: 27 images at 224 px in colour; 256 at 32 px and below (every batch of built-in and CIFAR data).
EVAL_BATCH = 256
EVAL_BATCH_BYTES = 16 << 20
SPLITS = ("val", "test")


def datasets_cache() -> Path:
    return Path(os.environ.get("HWNAS_CACHE", Path.home() / ".cache" / "hwnas")) / "datasets"


@dataclass
class Dataset:
    name: str
    source: str
    x_train: np.ndarray  # uint8 N x H x W x C
    y_train: np.ndarray  # int64
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    mean: np.ndarray = field(default=None)  # per channel, in [0, 1] units
    std: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        if self.mean is None:  # exact per-channel moments, a chunk of images at a time (bounded memory)
            self.mean, self.std = channel_moments(self.x_train)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val / "
                f"{len(self.x_test)} test images, {self.resolution}x{self.resolution}x"
                f"{self.in_channels}, {self.num_classes} classes ({self.source})")

    def normalize(self, x_uint8: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NCHW, normalised."""
        x = x_uint8.astype(np.float32) / 255.0
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def eval_batches(self, split: str = "test", resolution: int | None = None, limit: int | None = None,
                     batch_size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The images of ``split`` (``"val"`` or ``"test"``) in order, ``batch_size`` at a time
        (default ``eval_batch_size``), as (float32 NCHW normalised as an exported model expects,
        int64 labels): how hwnas scores a split, in memory or from the disk cache, without ever
        holding all of it as float32.
        ``resolution``: the side the model takes (resized as in training, antialiased bilinear;
        the copy ``at_resolution`` or ``prepare_sides`` made is used when there is one, else
        each batch is resized as it is read). ``limit``: the first N images only. The values are
        exactly those of ``test_arrays`` / ``val_arrays``."""
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise DatasetError(f"batch_size must be a positive whole number, got {batch_size!r}")
        x, y = (self.x_val, self.y_val) if split == "val" else (self.x_test, self.y_test)
        n = len(x) if limit is None else min(limit, len(x))
        x, side = self._source(x, resolution)  # checked now, not at the first batch
        return self._batches_of(x, y, n, side, batch_size or self.eval_batch_size(side))

    def eval_batch_size(self, side: int | None = None) -> int:
        """Images per batch when a split is scored at ``side`` (default: the data's own):
        ``EVAL_BATCH``, fewer where their float32 pixels would pass ``EVAL_BATCH_BYTES``."""
        per_image = 4 * self.in_channels * (side or self.resolution) ** 2
        return max(1, min(EVAL_BATCH, EVAL_BATCH_BYTES // per_image))

    def _source(self, x, resolution: int | None) -> tuple:
        """(where the split's images at ``resolution`` are read from, the side): a resized copy
        where one exists (on disk, made once; or in memory, made by ``at_resolution``), else the
        split itself, to be resized as it is read."""
        if resolution is None or resolution == self.resolution:
            return x, self.resolution
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise DatasetError(f"resolution must be a positive whole number, got {resolution!r}")
        if is_disk(x):
            return resized(x, resolution, _resize), resolution
        cached = self.__dict__.get("_resized", {}).get(resolution)
        if cached is not None:
            return (cached.x_test if x is self.x_test else cached.x_val), resolution
        return x, resolution

    def _batches_of(self, x, y, n: int, side: int, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, n, batch_size):
            xb = np.asarray(x[start:min(n, start + batch_size)])
            if xb.shape[1] != side:  # resized a batch at a time: the same pixels as the whole split
                xb = _resize(xb, side)
            yield self.normalize(xb), y[start:min(n, start + batch_size)].astype(np.int64)

    def test_arrays(self, resolution: int | None = None, limit: int | None = None):
        """(x, y) of the test split: float32 NCHW as an exported model expects, int64 labels.
        ``resolution``: the side the model takes (a winner's card states it); the images are
        resized to it as in training (antialiased bilinear). Default: the data's own side.
        ``limit``: the first N images only. For an image folder (on disk) x is a
        ``NormalizedImages``: indexing it gives float32 arrays, a batch at a time. In memory x is
        the whole split as one float32 array: to score a split, ``eval_batches`` instead."""
        return self._arrays(self.x_test, self.y_test, resolution, limit)

    def val_arrays(self, resolution: int | None = None, limit: int | None = None):
        return self._arrays(self.x_val, self.y_val, resolution, limit)

    def _arrays(self, x, y, resolution: int | None, limit: int | None):
        n = len(x) if limit is None else min(limit, len(x))
        x, side = self._source(x, resolution)  # the whole split's copy first, then its first n
        if n < len(x):
            x = x.take(np.arange(n)) if is_disk(x) else x[:n]
        if x.shape[1] != side:
            x = _resize(x, side)
        return (NormalizedImages(x, self) if is_disk(x) else self.normalize(x)), y[:n].astype(np.int64)

    def batches(self, batch_size: int, rng: np.random.Generator, augment: bool = True,
                limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of shuffled training batches (float32 NCHW, int64), with light
        augmentation: random crop after zero padding by 1/8 of the side, and horizontal flips
        (both keep the class of clothing and natural images)."""
        n = len(self.x_train) if limit is None else min(limit, len(self.x_train))
        order = rng.permutation(len(self.x_train))[:n]
        pad = max(1, self.resolution // 8)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x = self.x_train[idx]
            if augment:
                x = _random_crop_flip(x, pad, rng)
            yield self.normalize(x), self.y_train[idx]

    def at_resolution(self, resolution: int,
                      progress: Callable[[str, int, int], None] | None = None) -> "Dataset":
        """A copy with every split resized to ``resolution`` (antialiased bilinear, same
        normalisation); ``self`` when the size already matches. Cached per resolution. For
        images on disk the resized copy is made once on disk beside them (never all in memory),
        with ``progress(what, done, total)`` per file while it is made."""
        if resolution == self.resolution:
            return self
        if resolution < 1:
            raise DatasetError(f"resolution must be positive, got {resolution}")
        cache = self.__dict__.setdefault("_resized", {})
        if resolution not in cache:
            def rs(x, part: str):
                if not is_disk(x):
                    return _resize(x, resolution)
                step = (lambda done, total: progress(f"resizing {self.name}/{part} images to {resolution} px",
                                                     done, total)) if progress else None
                return resized(x, resolution, _resize, step)

            # x_val shares x_train's file: made with train, found on disk here
            cache[resolution] = Dataset(
                self.name, self.source, rs(self.x_train, "train"), self.y_train, rs(self.x_val, "train"),
                self.y_val, rs(self.x_test, "test"), self.y_test, self.class_names, self.mean, self.std)
        return cache[resolution]

    def prepare_sides(self, sides, progress: Callable[[str, int, int], None] | None = None,
                      threads: int | None = None) -> None:
        """For images on disk: make the resized copies ``at_resolution`` reads for each side now,
        once, with ``threads`` torch threads and a ``progress(what, done, total)`` per file, so no
        trial waits for one (or counts it in its seconds) and no two workers make the same copy.
        In memory a resize is quick and per process: nothing to do."""
        if not is_disk(self.x_train):
            return
        import torch

        prev = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for side in sorted(set(sides)):
                self.at_resolution(side, progress)
        finally:
            torch.set_num_threads(prev)

    def __getstate__(self) -> dict:  # resized copies are not shipped to workers (re-made there)
        state = dict(self.__dict__)
        state.pop("_on_device", None)  # a GPU copy of the images (nas.data._feed) stays where it was made
        if is_disk(self.x_train):
            state.pop("_resized", None)
        return state

    def subset(self, train: int | None = None, val: int | None = None, seed: int = 0) -> "Dataset":
        """A seeded, stratified smaller copy (same normalisation), for quick runs."""
        rng = np.random.default_rng(seed)
        itr = _stratified_take(self.y_train, train, rng)
        iva = _stratified_take(self.y_val, val, rng)
        return Dataset(self.name, self.source, rows(self.x_train, itr), self.y_train[itr],
                       rows(self.x_val, iva), self.y_val[iva], self.x_test, self.y_test,
                       self.class_names, self.mean, self.std)


class NormalizedImages:
    """A split on disk seen as float32 NCHW, normalised: ``x[i:j]`` (or an index array) reads and
    normalises just those images. ``len``, ``shape`` and ``dtype`` behave like an array's."""

    def __init__(self, x: DiskArray, dataset: Dataset):
        self.x, self.dataset = x, dataset

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        n, h, w, c = self.x.shape
        return (n, c, h, w)

    dtype = np.dtype(np.float32)
    ndim = 4

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.dataset.normalize(self.x[int(key)][None])[0]
        return self.dataset.normalize(self.x[key])

    def __array__(self, dtype=None, copy=None):
        a = self[0:len(self)]
        return a if dtype is None else a.astype(dtype)


def _resize(x: np.ndarray, size: int, chunk: int = 512) -> np.ndarray:
    import torch

    out = np.empty((len(x), size, size, x.shape[-1]), np.uint8)  # chunks bound the float copies
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            t = torch.from_numpy(x[i:i + chunk]).permute(0, 3, 1, 2).float()
            r = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear",
                                                antialias=True, align_corners=False)
            out[i:i + chunk] = r.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def _stratified_take(y: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    per = max(1, n // len(classes))
    idx = [rng.permutation(np.flatnonzero(y == c))[:per] for c in classes]
    return np.sort(np.concatenate(idx))


def crop_flip_draws(rng: np.random.Generator, n: int, pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random draws of one batch's augmentation, in their order: crop offsets (dy, dx) and
    flips. The one place they are drawn, for the numpy batches and the device feed (nas.data._feed)."""
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    return dy, dx, rng.random(n) < 0.5


def _random_crop_flip(x: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype)
    padded[:, pad:pad + h, pad:pad + w] = x
    dy, dx, flip = crop_flip_draws(rng, n, pad)
    out = np.empty_like(x)
    for i in range(n):
        crop = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


# --------------------------------------------------------------------------- loading

VAL_IMAGES = 2000  # the validation split the search ranks on, where the data allows
VAL_MAX_FRACTION = 0.25


def val_share(n_train: int) -> float:
    """The share of training images held out for validation: at least ``VAL_IMAGES`` (a
    candidate's accuracy on 1,000 images carries about +-1.6 points of sampling error, on 2,000
    about +-1.1) and at least 10%, but never more than a quarter of the training images."""
    return min(VAL_MAX_FRACTION, max(0.1, VAL_IMAGES / max(1, n_train)))


def load_dataset(name_or_path: str | os.PathLike, val_fraction: float | None = None, seed: int = 0,
                 image_size: int | None = None, download: bool = True,
                 progress: Callable[[str, int, int], None] | None = None) -> Dataset:
    """``builtin``, ``cifar10`` (from ``$HWNAS_CACHE/datasets`` or downloaded there when asked
    for by name), a path to an ``.npz`` (x_train, y_train, x_test, y_test), to CIFAR-10's
    ``cifar-10-python.tar.gz``, or to an image folder (one subfolder per class, or ``train/``
    and ``test/`` each with one subfolder per class). ``val_fraction``: the share of training
    images held out for validation (default ``val_share``). An image folder is decoded once into
    a disk cache (``progress(what, done, total)`` reports it) and read from there a batch at a
    time: folders larger than memory work."""
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = str(name_or_path)
    if text == "builtin":
        name, source, arrays = "builtin", ("Fashion-MNIST subset shipped with hwnas (600 train / 100 "
                                           "test images per class; MIT licence)"), _read_npz(BUILTIN)
    elif text == "cifar10":
        path = _cifar10_path(download)
        name, source, arrays = "cifar10", f"CIFAR-10 ({path})", _read_cifar10(path)
    else:
        path = Path(text)
        if not path.exists():
            raise DatasetError(f"dataset not found: {path} (use 'builtin', 'cifar10', an .npz file "
                               f"or an image folder)")
        if path.is_dir():
            name, source = path.name, f"image folder {path} (decoded once into {datasets_cache() / 'folders'})"
            arrays = read_folder(path, image_size, seed, datasets_cache(), progress)
        elif path.name.endswith((".tar.gz", ".tgz")):
            name, source, arrays = "cifar10", f"CIFAR-10 ({path})", _read_cifar10(path)
        elif path.suffix == ".npz":
            name, source, arrays = path.stem, f"npz file {path}", _read_npz(path)
        else:
            raise DatasetError(f"{path}: not an .npz file, a CIFAR-10 archive or an image folder")
    return _make(name, source, *arrays, val_fraction=val_fraction, seed=seed, progress=progress)


def _make(name, source, x_train, y_train, x_test, y_test, class_names, *, val_fraction, seed,
          progress=None) -> Dataset:
    x_train, x_test = _as_nhwc(x_train, f"{name}: x_train"), _as_nhwc(x_test, f"{name}: x_test")
    y_train, y_test = _labels(y_train, len(x_train), f"{name}: y_train"), _labels(y_test, len(x_test), f"{name}: y_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{name}: train images are {x_train.shape[1:]}, test images {x_test.shape[1:]}")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    if len(class_names) < num_classes:
        raise DatasetError(f"{name}: label {num_classes - 1} out of range for {len(class_names)} classes")
    present = np.bincount(y_train, minlength=len(class_names))
    if (present < 2).any():
        missing = [class_names[i] for i in np.flatnonzero(present < 2)]
        raise DatasetError(f"{name}: classes with fewer than 2 training images: {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    if val_fraction is None:
        val_fraction = val_share(len(y_train))
    val_idx = []
    for c in range(len(class_names)):
        members = rng.permutation(np.flatnonzero(y_train == c))
        val_idx.append(members[:max(1, int(round(len(members) * val_fraction)))])
    val = np.zeros(len(y_train), dtype=bool)
    val[np.concatenate(val_idx)] = True
    x_fit = rows(x_train, ~val)
    step = (lambda done, total: progress(f"counting {name} pixel statistics", done, total)) \
        if progress and is_disk(x_fit) else None
    mean, std = channel_moments(x_fit, progress=step)
    return Dataset(name, source, x_fit, y_train[~val], rows(x_train, val), y_train[val],
                   x_test, y_test, list(class_names), mean, std)


def _as_nhwc(x, what: str) -> np.ndarray:
    if is_disk(x):  # written by nas.data._imagefolder: already uint8 N x S x S x C
        if len(x) == 0:
            raise DatasetError(f"{what}: no images")
        return x
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[1] != x.shape[2]:
        raise DatasetError(f"{what}: expected N x H x W (x 1 or 3) square images, got shape {x.shape}")
    if len(x) == 0:
        raise DatasetError(f"{what}: no images")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise DatasetError(f"{what}: images must be finite numbers")
        hi = float(x.max())
        x = np.clip(x * (255.0 if hi <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    return x


def _labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(f"{what}: expected {n} labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
            raise DatasetError(f"{what}: labels must be whole numbers")
    y = y.astype(np.int64)
    if (y < 0).any():
        raise DatasetError(f"{what}: negative label {int(y.min())}")
    return y


def _read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DatasetError(f"{path}: missing keys {', '.join(missing)} "
                                   f"(has {', '.join(z.files) or 'none'})")
            names = [str(s) for s in z["class_names"]] if "class_names" in z.files else None
            return z["x_train"], z["y_train"], z["x_test"], z["y_test"], names
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from None


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR-10's batches are pickles: allow only what they contain (dicts, lists, bytes and
    numpy arrays), never arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _cifar10_path(download: bool) -> Path:
    path = datasets_cache() / CIFAR10_FILE
    if path.is_file():
        return path
    if not download:
        raise DatasetError(f"CIFAR-10 not found: put {CIFAR10_FILE} in {path.parent}")
    import urllib.request

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    try:
        with urllib.request.urlopen(CIFAR10_URL, timeout=30) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.exists():
            tmp.unlink()
        raise DatasetError(f"could not download CIFAR-10 from {CIFAR10_URL} ({exc}); download "
                           f"{CIFAR10_FILE} elsewhere and put it in {path.parent}, or pass its path") from None
    return path


def _read_cifar10(path: Path):
    try:
        with tarfile.open(path, "r:gz") as tar:
            def load(member: str) -> dict:
                f = tar.extractfile(f"cifar-10-batches-py/{member}")
                if f is None:
                    raise DatasetError(f"{path}: {member} missing from the archive")
                return _ArrayUnpickler(io.BytesIO(f.read()), encoding="bytes").load()

            train = [load(f"data_batch_{i}") for i in range(1, 6)]
            test = load("test_batch")
            meta = load("batches.meta")
    except DatasetError:
        raise
    except (OSError, tarfile.TarError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise DatasetError(f"{path}: not a readable CIFAR-10 python archive ({exc})") from None

    def arrays(batches):
        x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.concatenate([np.asarray(b[b"labels"]) for b in batches])
        return x, y

    xtr, ytr = arrays(train)
    xte, yte = arrays([test])
    names = [n.decode() for n in meta[b"label_names"]]
    return xtr, ytr, xte, yte, names
