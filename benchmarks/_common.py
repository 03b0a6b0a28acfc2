"""Shared helpers for benchmark scripts: machine description and markdown tables."""

from __future__ import annotations

import datetime
import os
import platform


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}; {datetime.date.today().isoformat()}")


def portable(text: str) -> str:
    """Results text without this machine's paths: the repo's parent becomes "..", the temp
    folder "<tmp>"."""
    import re
    import tempfile
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    text = text.replace(root + "/", "../")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[A-Za-z0-9_.-]+", "<tmp>", text)


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
