"""A run: its configuration (config.yaml), the context it resolves once, and its folder (lock, log)."""

from nas.run._config import (
    FIDELITIES,
    OBJECTIVES,
    PROMOTIONS,
    PROXY_KINDS,
    SAMPLERS,
    Rungs,
    RunMeta,
    SearchConfig,
    load_config,
    read_run_config,
    write_run_config,
)
from nas.run._context import (
    BUDGET_REFERENCE,
    FEASIBILITY_SAMPLES,
    RARE_SHARE,
    RunContext,
    default_budget,
    open_run,
    prepare_proxy_sides,
    record_inputs,
    resolve_run,
)
from nas.run._folder import RunFolder

__all__ = [
    "BUDGET_REFERENCE",
    "FEASIBILITY_SAMPLES",
    "FIDELITIES",
    "OBJECTIVES",
    "PROMOTIONS",
    "PROXY_KINDS",
    "RARE_SHARE",
    "RunContext",
    "RunFolder",
    "RunMeta",
    "Rungs",
    "SAMPLERS",
    "SearchConfig",
    "default_budget",
    "load_config",
    "open_run",
    "prepare_proxy_sides",
    "read_run_config",
    "record_inputs",
    "resolve_run",
    "write_run_config",
]
