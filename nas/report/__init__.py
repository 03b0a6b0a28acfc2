"""The report of a run: trials.csv, pareto.json, report.html and pareto.png, derived from the study."""

from nas.report._html import marked_trial, render_html
from nas.report._report import ReportWriter, load_run, regenerate, report_data, write_report, write_tables

__all__ = [
    "ReportWriter",
    "load_run",
    "marked_trial",
    "regenerate",
    "render_html",
    "report_data",
    "write_report",
    "write_tables",
]
