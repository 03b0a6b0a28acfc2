"""Where the package's data lives (``search_spaces/``, ``device_profiles/``), how a name or a
path to one of its YAML files is resolved, and how those files are read.

In a source checkout (or an editable install) the folders are the top-level folders of the
repo. A wheel carries them inside the package as ``nas/_data/<folder>`` (see pyproject.toml).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    installed = _PKG / "_data" / kind
    if installed.is_dir():
        return installed
    return _PKG.parent / kind


def data_names(kind: str) -> list[str]:
    """Names of the built-in YAML files of a data folder."""
    return sorted(p.stem for p in data_dir(kind).glob("*.yaml"))


def is_path_like(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def resolve_yaml(kind: str, name_or_path: str, missing_file: Callable[[Path], Exception],
                 unknown_name: Callable[[str, list[str]], Exception]) -> Path:
    """The YAML file for a built-in name or an explicit path, or the matching error."""
    if is_path_like(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise missing_file(path)
        return path
    path = data_dir(kind) / f"{name_or_path}.yaml"
    if not path.is_file():
        raise unknown_name(name_or_path, data_names(kind))
    return path


def read_yaml(path: Path, error: Callable[[str], Exception]) -> Any:
    """Safe-load a YAML file; malformed YAML or an unreadable file becomes ``error(message)``
    naming the file and, where known, the line."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}:{where} malformed YAML: {problem}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer to fill; renamed onto ``path`` when the
    block ends without an error, removed otherwise. The one way hwnas writes a file: a crash
    or a full disk mid-write leaves the previous version intact."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (same folder)."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as f:
            f.write(raw)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
