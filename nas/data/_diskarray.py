"""Image arrays that live on disk: datasets larger than memory.

A ``DiskArray`` is a uint8 N x H x W x C ``.npy`` file, optionally seen through a row index (a
split of it). Indexing with an int, a slice or an index array reads just those rows (positioned
reads, in file order) into an ordinary array; nothing else is held in RAM, and unlike a memory
map the file's pages never count towards the process's resident memory. It pickles as its path and index,
so sending a dataset to a Ray worker on the same machine (or one that sees the same cache
folder) costs a few bytes, and the worker re-opens the file.

``write_rows`` builds such a file chunk by chunk (atomically: a partial file is never seen),
``resized`` makes a resized copy of one on disk, once per side, so the proxy's small inputs
never need every resized image in memory, and ``channel_moments`` gives the normalisation
statistics (kept beside the file, so a later load does not read every image again).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from nas._paths import atomic_write
from nas.errors import DatasetError

__all__ = ["DiskArray", "write_rows", "rows", "is_disk", "channel_moments"]

CHUNK = 512  # images per read/resize chunk: bounded working memory at any side


class DiskArray:
    def __init__(self, path: str | os.PathLike, index: np.ndarray | None = None):
        self.path = Path(path)
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self._fd: int | None = None
        self._meta: tuple | None = None

    def _header(self) -> tuple:
        """(full shape, dtype, data offset, bytes per row), read once from the .npy header."""
        if self._meta is None:
            with open(self.path, "rb") as f:
                major, _ = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                if fortran:
                    raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
                offset = f.tell()
            row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            self._meta = (tuple(shape), dtype, offset, row)
        return self._meta

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of the file with one positioned read: the bytes go through the
        page cache, not into this process's resident memory (unlike a memory map)."""
        shape, dtype, offset, row = self._header()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        want = (stop - start) * row
        buf = bytearray(want)
        view, got = memoryview(buf), 0
        while got < want:
            n = os.preadv(self._fd, [view[got:]], offset + start * row + got)
            if n <= 0:
                raise OSError(f"{self.path}: file shorter than its header says")
            got += n
        return np.frombuffer(buf, dtype=dtype).reshape((stop - start,) + shape[1:])

    def __reduce__(self):
        return (DiskArray, (str(self.path), self.index))

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass

    def __len__(self) -> int:
        return self._header()[0][0] if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),) + self._header()[0][1:]

    @property
    def dtype(self):
        return self._header()[1]

    @property
    def ndim(self) -> int:
        return len(self._header()[0])

    def take(self, idx) -> "DiskArray":
        """A view of some rows (a split), still on disk."""
        idx = np.arange(len(self))[idx] if not isinstance(idx, np.ndarray) or idx.dtype == bool else idx
        base = np.asarray(idx, dtype=np.int64) if self.index is None else self.index[idx]
        return DiskArray(self.path, base)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            i = int(np.arange(len(self))[key]) if self.index is None else int(self.index[key])
            return self._read(i, i + 1)[0]
        rows_ = np.arange(len(self))[key] if not isinstance(key, np.ndarray) or key.dtype == bool else key
        src = np.asarray(rows_, dtype=np.int64)
        if self.index is not None:
            src = self.index[src]
        shape = self._header()[0]
        out = np.empty((len(src),) + shape[1:], dtype=self.dtype)
        if not len(src):
            return out
        order = np.argsort(src, kind="stable")  # read in file order, in contiguous runs
        s = src[order]
        breaks = np.flatnonzero(np.diff(s) != 1) + 1
        for run in np.split(np.arange(len(s)), breaks):
            block = self._read(int(s[run[0]]), int(s[run[-1]]) + 1)
            out[order[run]] = block
        return out

    def __array__(self, dtype=None, copy=None):
        a = self[np.arange(len(self))]
        return a if dtype is None else a.astype(dtype)


def is_disk(x) -> bool:
    return isinstance(x, DiskArray)


def rows(x, idx):
    """``x[idx]`` that stays on disk for a DiskArray (a split is a view, not a copy)."""
    return x.take(idx) if isinstance(x, DiskArray) else x[idx]


def write_rows(path: Path, n: int, shape: tuple[int, ...], fill: Callable[[np.ndarray, int, int], None],
               progress: Callable[[int, int], None] | None = None, chunk: int = CHUNK) -> DiskArray:
    """Create ``path`` (uint8, ``n`` x ``shape``) by calling ``fill(out_rows, start, stop)`` chunk
    by chunk; written to a temporary name and renamed, so a killed build leaves no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write(tmp, path, n, shape, fill, progress, chunk)
    except OSError as exc:  # a full disk or a read-only cache: one clear line, nothing half-written
        raise DatasetError(f"cannot write the image cache {path}: {exc.strerror or exc}; free disk space "
                           f"or point HWNAS_CACHE elsewhere") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return DiskArray(path)


def _write(tmp: Path, path: Path, n: int, shape: tuple[int, ...], fill, progress, chunk: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:  # plain writes: no memory map to grow this process's memory
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                 "fortran_order": False, "shape": (n,) + tuple(shape)})
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            buf = np.zeros((stop - start,) + tuple(shape), dtype=np.uint8)
            fill(buf, start, stop)
            f.write(buf.tobytes())
            if progress:
                progress(stop, n)
    os.replace(tmp, path)


def resized(x: DiskArray, size: int, resize: Callable[[np.ndarray, int], np.ndarray],
            progress: Callable[[int, int], None] | None = None) -> DiskArray:
    """``x`` (all of its file) resized to ``size`` on disk beside it, once; then seen through
    the same index."""
    digest = hashlib.sha1(f"{x.path.resolve()}:{x.path.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    path = x.path.with_name(f"{x.path.stem}.r{size}.{digest}.npy")
    if not path.is_file():
        base = DiskArray(x.path)
        c = base.shape[-1]

        def fill(out, start, stop):
            out[:] = resize(base[start:stop], size)

        write_rows(path, len(base), (size, size, c), fill, progress)
    return DiskArray(path, x.index)


def channel_moments(x, chunk: int = 1024,
                    progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float32, in [0, 1] units) of N x H x W x C images, a chunk of
    images at a time (bounded memory). uint8 images are counted exactly, with a 256-bin histogram
    per channel (a float64 pass costs several times more). For a DiskArray the result is kept
    beside its file, keyed by the rows it sees, so a later load of the same split reads a few
    bytes instead of every image. ``progress(done, total)`` after each chunk counted."""
    keep = _moments_path(x) if is_disk(x) else None
    if keep is not None and keep.is_file():
        try:
            saved = json.loads(keep.read_text())
            return np.array(saved["mean"], np.float32), np.array(saved["std"], np.float32)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: count again and rewrite it
    c, n = int(x.shape[-1]), 0
    if x.dtype == np.uint8:
        hist = np.zeros((c, 256), np.int64)
        for i in range(0, len(x), chunk):
            a = np.asarray(x[i:i + chunk]).reshape(-1, c)
            for ch in range(c):
                hist[ch] += np.bincount(a[:, ch], minlength=256)
            if progress:
                progress(min(len(x), i + chunk), len(x))
        v = np.arange(256, dtype=np.int64)
        n = int(hist[0].sum())
        s1, s2 = (hist @ v).astype(np.float64) / 255.0, (hist @ (v * v)).astype(np.float64) / 255.0 ** 2
    else:
        s1, s2 = np.zeros(c), np.zeros(c)
        for i in range(0, len(x), chunk):
            a = np.asarray(x[i:i + chunk]).reshape(-1, c).astype(np.float64) / 255.0
            s1 += a.sum(0)
            s2 += (a * a).sum(0)
            n += len(a)
    mean = s1 / max(1, n)
    std = np.maximum(np.sqrt(np.maximum(s2 / max(1, n) - mean * mean, 0)), 1e-3)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    if keep is not None:
        try:
            atomic_write(keep, json.dumps({"mean": mean.tolist(), "std": std.tolist(), "images": len(x)}))
        except OSError:
            pass  # a read-only cache: counted again next time
    return mean, std


def _moments_path(x: DiskArray) -> Path | None:
    try:
        st = x.path.stat()
    except OSError:
        return None
    h = hashlib.sha1(f"{x.path.resolve()}:{st.st_mtime_ns}:{st.st_size}".encode())
    h.update(b"all" if x.index is None else np.ascontiguousarray(x.index).tobytes())
    return x.path.with_name(f"{x.path.stem}.moments.{h.hexdigest()[:16]}.json")
