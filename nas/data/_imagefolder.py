"""Image folders, decoded once into a disk cache (never all in memory).

The first load decodes and resizes every image into ``$HWNAS_CACHE/datasets/folders/<digest>/``
(uint8 ``.npy`` files, read a batch at a time afterwards), chunk by chunk, with one decoding
thread per core and a progress callback; later loads of the same folder (same files, sizes and
modification times, same side) reuse it. Memory stays at one chunk of images whatever the
folder's size.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from nas._paths import atomic_write
from nas.data._diskarray import DiskArray, write_rows
from nas.errors import DatasetError

__all__ = ["IMAGE_EXTS", "read_folder", "decode_threads"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
Progress = Callable[[str, int, int], None]


def _classes_in(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list(dirs: list[Path]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, d in enumerate(dirs):
        imgs = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        if not imgs:
            raise DatasetError(f"{d}: class {d.name!r} has no images")
        files += imgs
        labels += [label] * len(imgs)
    return files, labels


def decode_threads() -> int:
    """Threads that decode images: the cores this process may use (Pillow releases the GIL while
    it decodes and resizes), at most 16; ``HWNAS_DECODE_THREADS`` overrides."""
    env = os.environ.get("HWNAS_DECODE_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise DatasetError(f"HWNAS_DECODE_THREADS must be a whole number, got {env!r}") from None
    return max(1, min(16, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


SHOWN_BAD = 10  # unreadable images named in the error; the rest are counted


def _reason(f: Path, exc: Exception) -> str:
    """Pillow's message without the path it repeats (the error names the file once)."""
    text = str(exc).replace(repr(str(f)), "").replace(str(f), "").strip(" :")
    return text or type(exc).__name__


def _decode_into(files: list[Path], size: int, gray: bool, pool: ThreadPoolExecutor,
                 bad: list[tuple[Path, str]]):
    """``fill`` for ``write_rows``: decodes ``files`` in order; an image that cannot be read is
    appended to ``bad`` (its row left zero) and decoding goes on, so that one error names them all."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if gray else "RGB"

    def one(f: Path) -> np.ndarray | None:
        try:
            with Image.open(f) as im:
                im.draft(mode, (size, size))  # JPEG: decode at a reduced scale
                a = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            bad.append((f, _reason(f, exc)))
            return None
        return a[..., None] if gray else a

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        for i, a in enumerate(pool.map(one, files[start:stop])):
            if a is not None:
                out[i] = a
    return fill


def _unreadable(root: Path, bad: list[tuple[Path, str]]) -> DatasetError:
    """One error naming the first ``SHOWN_BAD`` unreadable images (relative to ``root``) and the count."""
    bad = sorted(set(bad))
    shown = "; ".join(f"{f.relative_to(root) if f.is_relative_to(root) else f} ({why})"
                      for f, why in bad[:SHOWN_BAD])
    more = f"; and {len(bad) - SHOWN_BAD} more" if len(bad) > SHOWN_BAD else ""
    return DatasetError(f"{root}: {len(bad)} image{'s' if len(bad) != 1 else ''} cannot be read (fix or "
                        f"remove {'them' if len(bad) != 1 else 'it'}, then run again): {shown}{more}")


def _probe(root: Path, files: list[Path]) -> tuple[bool, tuple[int, int]]:
    """(grayscale, (width, height)) of the first image that opens; every image unreadable: the error."""
    from PIL import Image

    bad: list[tuple[Path, str]] = []
    for f in files:
        try:
            with Image.open(f) as im:
                return im.mode in ("L", "1", "I;16", "I"), im.size
        except (OSError, ValueError) as exc:  # the decoding pass names it with the others
            bad.append((f, _reason(f, exc)))
    raise _unreadable(root, bad)


def read_folder(root: Path, image_size: int | None, seed: int, cache: Path,
                progress: Progress | None = None):
    """(x_train, y_train, x_test, y_test, class names): x as DiskArrays in the cache."""
    split = (root / "train").is_dir() and (root / "test").is_dir()
    class_dirs = _classes_in(root / "train") if split else _classes_in(root)
    if not class_dirs:
        raise DatasetError(f"{root}: no class subfolders (expected {root}/<class>/<image> "
                           f"or {root}/train/<class>/...)")
    names = [d.name for d in class_dirs]
    if split:
        test_dirs = [root / "test" / n for n in names]
        missing = [n for n, d in zip(names, test_dirs) if not d.is_dir()]
        if missing:
            raise DatasetError(f"{root}/test: missing class folders {', '.join(missing)}")
        ftr, ltr = _list(class_dirs)
        fte, lte = _list(test_dirs)
    else:
        files, labels = _list(class_dirs)
        rng = np.random.default_rng(seed)
        test_mask = np.zeros(len(files), dtype=bool)
        labels_a = np.array(labels)
        for c in range(len(names)):
            members = rng.permutation(np.flatnonzero(labels_a == c))
            test_mask[members[:max(1, len(members) // 5)]] = True  # 20% of each class
        ftr = [f for f, t in zip(files, test_mask) if not t]
        ltr = [lb for lb, t in zip(labels, test_mask) if not t]
        fte = [f for f, t in zip(files, test_mask) if t]
        lte = [lb for lb, t in zip(labels, test_mask) if t]
    gray, first_size = _probe(root, ftr)
    size = image_size or min(first_size)
    # the cache is keyed by every file's path, size and modification time, and the side
    h = hashlib.sha256(f"{root.resolve()}|{size}|{gray}|{split}|{seed}".encode())
    for f in ftr + fte:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    d = cache / "folders" / h.hexdigest()[:20]
    paths, made, bad = [], [], []
    for part, fl in (("train", ftr), ("test", fte)):
        path = d / f"{part}.npy"
        if not path.is_file():
            step = (lambda done, total, _p=part: progress(f"decoding {root.name}/{_p} images", done, total)) \
                if progress else None
            with ThreadPoolExecutor(decode_threads(), thread_name_prefix="hwnas-decode") as pool:
                write_rows(path, len(fl), (size, size, 1 if gray else 3),
                           _decode_into(fl, size, gray, pool, bad), step)
            made.append(path)
        paths.append(path)
    if bad:  # every unreadable image of both splits in one error; no cache of a folder with holes
        for path in made:
            path.unlink(missing_ok=True)
        raise _unreadable(root, bad)
    out = [DiskArray(p) for p in paths]
    atomic_write(d / "source.json", json.dumps({"root": str(root.resolve()), "size": size, "gray": gray,
                                                "train": len(ftr), "test": len(fte), "classes": names}))
    return out[0], np.array(ltr), out[1], np.array(lte), names
