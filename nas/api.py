"""The library's entry points for a whole search, wired the way ``nas search`` runs them: the
driver (``nas.search``) with the report (``nas.report``) subscribed to its trial events."""

from __future__ import annotations

import os
from typing import Callable, Sequence

from nas.report import ReportWriter
from nas.run import RunContext, SearchConfig
from nas.search import SearchObserver, SearchProgress, SearchResult
from nas.search import resume_search as _resume
from nas.search import run_search as _run

__all__ = ["run_search", "resume_search"]


def run_search(config: SearchConfig | RunContext, progress: Callable[[SearchProgress], None] | None = None,
               observers: Sequence[SearchObserver] = ()) -> SearchResult:
    """Start a new run (``nas.search.run_search``) with its report kept up to date."""
    return _run(config, progress, (ReportWriter(), *observers))


def resume_search(run_dir: str | os.PathLike | RunContext, progress: Callable[[SearchProgress], None] | None = None,
                  data_progress: Callable[[str, int, int], None] | None = None,
                  observers: Sequence[SearchObserver] = (), allow_changed: bool = False,
                  **overrides) -> SearchResult:
    """Continue a run (``nas.search.resume_search``) with its report kept up to date."""
    return _resume(run_dir, progress, data_progress, (ReportWriter(), *observers), allow_changed=allow_changed,
                   **overrides)
