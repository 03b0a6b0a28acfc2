"""Where the package's data lives: ``search_spaces/`` and ``device_profiles/``.

In a source checkout (or an editable install) they are the top-level folders of the repo. A
wheel carries them inside the package as ``nas/_data/<folder>`` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    installed = _PKG / "_data" / kind
    if installed.is_dir():
        return installed
    return _PKG.parent / kind
