"""What a run was made from: its space file, its device profile and its data, each recorded in
config.yaml by absolute path and content digest when the run starts, and checked when the run
is opened again (``nas search --resume``, ``nas distill``, ``nas export``).

- the space: the YAML file it was read from (sha256);
- the device profile: copied into the run folder (``profile/``: the YAML and the table files it
  names), so that a resumed search, the winner's card and an export price candidates with the
  numbers the trials were ranked by, whatever happens to the original later;
- the data: a file (``.npz``, a CIFAR-10 archive, the built-in subset, the ``cifar10`` cache)
  by its content (sha256, streamed); an image folder by its file list with sizes and
  modification times (hashing every photo would take longer than the search's first trial).

A changed space file or data is refused with one line naming it (``RunChangedError``) unless
the caller allows it (``--allow-changed``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath

import yaml

from nas._paths import atomic_write
from nas.data import BUILTIN, CIFAR10_FILE, datasets_cache
from nas.errors import RunChangedError, SearchError
from nas.latency import profile_files

__all__ = ["PROFILE_DIR", "sha256_file", "folder_digest", "data_identity", "profile_digest", "copy_profile",
           "check_unchanged", "data_digest"]

PROFILE_DIR = "profile"  # the run's copy of its device profile
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's content, read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(root: str | os.PathLike) -> str:
    """A digest of an image folder's file list: every file's path under ``root``, size and
    modification time (hidden files and folders left out); a photo added, removed, replaced or
    touched changes it."""
    root = Path(root)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            p = Path(dirpath) / name
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return "files:" + h.hexdigest()


def data_digest(path: Path) -> str:
    """``folder_digest`` for a folder, else ``sha256:`` of the file's content."""
    return folder_digest(path) if path.is_dir() else "sha256:" + sha256_file(path)


def data_identity(data: str) -> tuple[str, str]:
    """(absolute path, digest) of a run's data as the dataset loader reads it: the shipped file
    for ``builtin``, the cache file for ``cifar10``, else the path given (made absolute)."""
    if data == "builtin":
        path = Path(BUILTIN)
    elif data == "cifar10":
        path = datasets_cache() / CIFAR10_FILE
    else:
        path = Path(data)
    path = path.resolve()
    if not path.exists():
        raise SearchError(f"the data {path} is gone")
    return str(path), data_digest(path)


def profile_digest(yaml_path: str | os.PathLike) -> str:
    """sha256 over a profile's files (``nas.latency.profile_files``), each with its name."""
    h = hashlib.sha256()
    for name, p in profile_files(Path(yaml_path)).items():
        if not p.is_file():
            raise SearchError(f"device profile file {p} is missing")
        h.update(f"{name}\n{sha256_file(p)}\n".encode())
    return "sha256:" + h.hexdigest()


def copy_profile(yaml_path: str | os.PathLike, dest: Path) -> Path:
    """Copy a profile (its YAML and the files it names) into ``dest``; returns the copy's YAML.
    A file named outside the YAML's folder (``../x`` or absolute) is copied beside it and the
    copy's YAML names it there."""
    files = profile_files(Path(yaml_path))
    (yaml_name, yaml_src), *parts = files.items()
    dest.mkdir(parents=True, exist_ok=True)
    renamed = {}
    for ref, src in parts:
        rel = PurePosixPath(ref)
        if rel.is_absolute() or ".." in rel.parts:
            rel = PurePosixPath(Path(ref).name)
            renamed[ref] = rel.as_posix()
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    if renamed:
        raw = yaml.safe_load(yaml_src.read_text(encoding="utf-8"))
        if raw.get("table") in renamed:
            raw["table"] = renamed[raw["table"]]
        est = raw.get("estimator")
        if isinstance(est, dict) and est.get("fit_lut") in renamed:
            est["fit_lut"] = renamed[est["fit_lut"]]
        atomic_write(dest / yaml_name, yaml.safe_dump(raw, sort_keys=False))
    else:
        shutil.copyfile(yaml_src, dest / yaml_name)
    return dest / yaml_name


def check_unchanged(what: str, path: str | os.PathLike, recorded: str, now: str, allow: bool) -> None:
    """One line naming ``what`` changed at ``path``, unless ``allow`` (or nothing was recorded:
    a run written before digests were)."""
    if recorded and now != recorded and not allow:
        raise RunChangedError(f"the {what} {path} changed since the run started; pass --allow-changed "
                              f"to use it as it is now")
