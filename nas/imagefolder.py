"""Image folders, decoded once into a disk cache (never all in memory).

The first load decodes and resizes every image into ``$HWNAS_CACHE/datasets/folders/<digest>/``
(uint8 ``.npy`` files, memory-mapped afterwards), chunk by chunk with a progress callback; later
loads of the same folder (same files, sizes and modification times, same side) reuse it. Memory
stays at one chunk of images whatever the folder's size.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from nas._paths import atomic_write
from nas.diskarray import DiskArray, write_rows
from nas.errors import DatasetError

__all__ = ["IMAGE_EXTS", "read_folder"]

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


def _decode_into(files: list[Path], size: int, gray: bool):
    from PIL import Image, UnidentifiedImageError

    def fill(out: np.ndarray, start: int, stop: int) -> None:
        for i, f in enumerate(files[start:stop]):
            try:
                with Image.open(f) as im:
                    im.draft("L" if gray else "RGB", (size, size))  # JPEG: decode at a reduced scale
                    im = im.convert("L" if gray else "RGB").resize((size, size), Image.BILINEAR)
                    a = np.asarray(im)
            except (OSError, UnidentifiedImageError) as exc:
                raise DatasetError(f"{f}: cannot read image ({exc})") from None
            out[i] = a[..., None] if gray else a
    return fill


def read_folder(root: Path, image_size: int | None, seed: int, cache: Path,
                progress: Progress | None = None):
    """(x_train, y_train, x_test, y_test, class names): x as DiskArrays in the cache."""
    from PIL import Image

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
    try:
        with Image.open(ftr[0]) as im:
            gray = im.mode in ("L", "1", "I;16", "I")
            size = image_size or min(im.size)
    except OSError as exc:
        raise DatasetError(f"{ftr[0]}: cannot read image ({exc})") from None
    # the cache is keyed by every file's path, size and modification time, and the side
    h = hashlib.sha256(f"{root.resolve()}|{size}|{gray}|{split}|{seed}".encode())
    for f in ftr + fte:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    d = cache / "folders" / h.hexdigest()[:20]
    out = []
    for part, fl in (("train", ftr), ("test", fte)):
        path = d / f"{part}.npy"
        if not path.is_file():
            step = (lambda done, total, _p=part: progress(f"decoding {root.name}/{_p} images", done, total)) \
                if progress else None
            write_rows(path, len(fl), (size, size, 1 if gray else 3), _decode_into(fl, size, gray), step)
        out.append(DiskArray(path))
    atomic_write(d / "source.json", json.dumps({"root": str(root.resolve()), "size": size, "gray": gray,
                                                "train": len(ftr), "test": len(fte), "classes": names}))
    return out[0], np.array(ltr), out[1], np.array(lte), names
