"""What the driver tells the rest of the system while a search runs: trial events.

The driver knows nothing of reports; anything that keeps a view of the study up to date (the
report's tables and page, a dashboard) subscribes as a ``SearchObserver`` and is handed a
``RunView`` when the trials change and when the search ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import optuna

    from nas.run import RunMeta, SearchConfig

__all__ = ["RunView", "SearchObserver"]


@dataclass(frozen=True)
class RunView:
    """A run as observers see it: its folder, its study and what it was made from."""

    run_dir: Path
    study: optuna.Study
    config: SearchConfig
    meta: RunMeta


class SearchObserver(Protocol):
    def trials_changed(self, view: RunView) -> None:
        """Trials finished since the last call (the driver calls at most every few seconds)."""

    def search_ended(self, view: RunView) -> dict[str, Path]:
        """The search stopped (finished or interrupted); returns the files it wrote, by name."""
