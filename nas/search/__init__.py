"""The search: the driver (ask/tell over Ray), the worker task, halving, samplers, the trial
records, the front, and the events observers subscribe to."""

from nas.search._driver import SearchProgress, SearchResult, resume_search, run_search
from nas.search._events import RunView, SearchObserver
from nas.search._front import accuracy_at, best_trial, hypervolume_2d, pareto_front
from nas.search._halving import (
    PROMOTING_ATTR,
    RUNGS_ATTR,
    Ladder,
    Promotion,
    band_order,
    checkpoint_path,
    pareto_order,
    trial_weights,
)
from nas.search._trials import (
    CONSTRAINT_NAMES_ATTR,
    DASHBOARD_NOTE,
    OVER_BUDGET_ATTR,
    TrialRow,
    bit_counts,
    constraints_of,
    open_study,
    own_side,
    read_trials,
    rows_for_device,
    status_counts,
    trial_attrs,
    trial_row,
)
from nas.search._worker import WorkerResult

__all__ = [
    "CONSTRAINT_NAMES_ATTR",
    "DASHBOARD_NOTE",
    "Ladder",
    "OVER_BUDGET_ATTR",
    "Promotion",
    "PROMOTING_ATTR",
    "RUNGS_ATTR",
    "RunView",
    "SearchObserver",
    "SearchProgress",
    "SearchResult",
    "TrialRow",
    "WorkerResult",
    "accuracy_at",
    "band_order",
    "best_trial",
    "bit_counts",
    "checkpoint_path",
    "constraints_of",
    "hypervolume_2d",
    "open_study",
    "own_side",
    "pareto_front",
    "pareto_order",
    "read_trials",
    "resume_search",
    "rows_for_device",
    "run_search",
    "status_counts",
    "trial_attrs",
    "trial_row",
    "trial_weights",
]
