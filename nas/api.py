"""The library's entry points for a whole run, wired the way the ``nas`` commands run them: the
search driver (``nas.search``) with the report (``nas.report``) subscribed to its trial events,
and the winner's distillation and export (``nas.winner``) followed by the report's regeneration,
so that report.html never describes a state the run has left."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from nas.report import ReportWriter, regenerate
from nas.run import RunContext, SearchConfig
from nas.search import SearchObserver, SearchProgress, SearchResult
from nas.search import resume_search as _resume
from nas.search import run_search as _run
from nas.winner import DEFAULT_FORMATS, DistillConfig, WinnerCard
from nas.winner import distill_run as _distill
from nas.winner import export_run as _export

__all__ = ["run_search", "resume_search", "distill_run", "export_run"]

Progress = Callable[[str, int, int], None]


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


def distill_run(run: str | os.PathLike | RunContext, cfg: DistillConfig | None = None,
                progress: Progress | None = None, allow_changed: bool = False) -> WinnerCard:
    """Train, export and document a winner (``nas.winner.distill_run``), then regenerate the
    run's report, which lists every exported winner."""
    card = _distill(run, cfg, progress=progress, allow_changed=allow_changed)
    regenerate(run.run_dir if isinstance(run, RunContext) else Path(run))
    return card


def export_run(run_dir: str | os.PathLike, folder: str = "winner", formats: tuple[str, ...] = DEFAULT_FORMATS,
               progress: Progress | None = None, allow_changed: bool = False) -> WinnerCard:
    """Re-export a trained winner (``nas.winner.export_run``), then regenerate the run's report."""
    card = _export(run_dir, folder, formats, progress=progress, allow_changed=allow_changed)
    regenerate(Path(run_dir))
    return card
