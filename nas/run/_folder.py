"""A run folder: exclusive lock, atomic writes, the log.

Every file in a run folder is written to a temporary file in the same folder and then
``os.replace``d, so a crash or a full disk mid-write leaves the previous version intact. One
process at a time holds the folder's lock (``fcntl.flock``: released by the kernel when the
holder dies, even by ``kill -9``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from nas._paths import atomic_write
from nas.errors import RunLockedError

__all__ = ["RunFolder"]


class RunFolder:
    """``results/<name>/``. Use as a context manager to hold its lock."""

    LOCK = ".lock"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self._fd: int | None = None

    def __enter__(self) -> "RunFolder":
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    def file(self, name: str) -> Path:
        return self.path / name

    def lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(f"run folder {self.path} is in use by another nas process "
                                 f"(pid {holder}); wait for it or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def unlock(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.file(name)
        atomic_write(path, data)
        return path

    def log(self, message: str) -> None:
        """Append one timestamped line to ``search.log`` (appends cannot corrupt earlier lines)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.file("search.log"), "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
