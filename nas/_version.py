"""The installed version of hwnas (kept apart so that any layer can read it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hwnas")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"
