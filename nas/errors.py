"""Every error the library raises on purpose, each a ``NasError``. Only ``nas.cli`` turns them
into messages and exit codes.

Every ``NasError`` survives pickling with its type, message and attributes: Ray carries a
worker's exception to the driver by pickling it, and an exception whose ``__init__`` takes
other arguments than its message would otherwise fail to unpickle there (the driver then sees
Ray's ``UnserializableException`` and the real reason is lost).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NasError",
    "CandidateError",
    "CandidateSyntaxError",
    "SpaceError",
    "UnknownSpaceError",
    "ReferenceNotFoundError",
    "ExportError",
    "DeviceError",
    "UnknownDeviceError",
    "LutError",
    "DatasetError",
    "SupernetError",
    "SearchError",
    "BudgetError",
    "RunChangedError",
    "SearchInterrupted",
    "RunLockedError",
    "ReportError",
    "StudyDamagedError",
    "DistillError",
    "TransferError",
]


def _rebuild(cls: type[NasError], args: tuple[Any, ...], state: dict[str, Any]) -> NasError:
    """Unpickle an error without calling its ``__init__`` (whose signature may differ from
    ``args``)."""
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class NasError(Exception):
    """Base class of every error the library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class _Message:
    """For errors that also derive from KeyError, whose ``str`` would quote the message."""

    args: tuple[Any, ...]

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CandidateError(NasError, ValueError):
    """A candidate is well formed but not a member of its search space (or has no space)."""


class CandidateSyntaxError(CandidateError):
    """A candidate key could not be parsed. ``position`` is the 0-based character offset."""

    def __init__(self, key: str, position: int, reason: str):
        self.key = key
        self.position = position
        self.reason = reason
        super().__init__(f"bad candidate key at position {position}: {reason} (key: {key!r})")


class SpaceError(NasError, ValueError):
    """A search space definition (YAML) is malformed."""


class UnknownSpaceError(_Message, SpaceError, KeyError):
    """No search space of that name exists. ``valid`` lists the names that do."""

    def __init__(self, name: str, valid: list[str]):
        self.name = name
        self.valid = valid
        super().__init__(f"unknown search space {name!r}; valid: {', '.join(valid)}")


class ReferenceNotFoundError(_Message, SpaceError, KeyError):
    def __init__(self, space: str, name: str, valid: list[str]):
        self.space = space
        self.name = name
        self.valid = valid
        super().__init__(f"space {space!r} has no reference {name!r}; valid: {', '.join(valid)}")


class ExportError(NasError):
    """An exported model could not be written or does not match the torch model."""


class DeviceError(NasError, ValueError):
    """A device profile or its table is malformed, or cannot price an op."""


class UnknownDeviceError(_Message, DeviceError, KeyError):
    def __init__(self, name: str, valid: list[str]):
        self.name, self.valid = name, valid
        super().__init__(f"unknown device {name!r}; valid: {', '.join(valid)} "
                         f"(or a path to a profile YAML)")


class LutError(DeviceError):
    """An imported latency table (another project's LUT) is malformed."""


class DatasetError(NasError, ValueError):
    """A dataset cannot be found, read or used."""


class SearchError(NasError, ValueError):
    """A search cannot start or continue (bad configuration, existing run, no feasible
    candidate, every trained trial failed ...)."""


class BudgetError(SearchError):
    """No candidate of the space meets the latency budget."""


class RunChangedError(SearchError):
    """What a run was made from (its space file, its data) is not what it was when the run
    started; ``--allow-changed`` accepts it."""


class SearchInterrupted(NasError, KeyboardInterrupt):
    """The search was stopped (Ctrl-C); finished trials are kept and the run can resume."""

    def __init__(self, run_dir: object, done: int, total: int):
        super().__init__(f"search interrupted after {done}/{total} trials; continue with "
                         f"`nas search --resume {run_dir}`")
        self.run_dir = run_dir


class RunLockedError(NasError, RuntimeError):
    """Another process holds the run folder."""


class ReportError(NasError, ValueError):
    """A run folder cannot be reported (no study, unreadable config ...)."""


class StudyDamagedError(ReportError, SearchError):
    """A run's study database cannot be read as its study: a truncated or overwritten file,
    another program's SQLite file, or one that holds no study of the run's name. Raised before
    anything in the run folder is written. ``path`` is the database file, ``reason`` why."""

    def __init__(self, path: object, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"the study database {path} is damaged or not this run's study ({reason}); nothing "
                         f"was written: trials.csv and the winner files are untouched (restore study.db from "
                         f"a copy to continue)")


class SupernetError(NasError, ValueError):
    """A supernet cannot hold or run what it was asked to (a space without one yet, a candidate
    of another space, weights or a checkpoint of another supernet)."""


class DistillError(NasError, ValueError):
    """The winner cannot be picked, trained or exported (bad rule, bad teacher ...)."""


class TransferError(NasError, ValueError):
    """Two networks are not parent and pruned child (L1-norm channel transfer)."""
