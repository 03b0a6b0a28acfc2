"""The report of a run: trials.csv, pareto.json, report.html and pareto.png, derived from the study."""

from nas.report._html import marked_trial, render_html
from nas.report._report import (
    ReportWriter,
    RunFront,
    load_run,
    overlay_runs,
    regenerate,
    report_data,
    run_fronts,
    write_report,
    write_tables,
)

__all__ = [
    "ReportWriter",
    "RunFront",
    "load_run",
    "marked_trial",
    "overlay_runs",
    "regenerate",
    "render_html",
    "report_data",
    "run_fronts",
    "write_report",
    "write_tables",
]
