"""Typed errors raised by the library. Only ``nas.cli`` turns them into messages and exit codes."""

from __future__ import annotations

__all__ = [
    "NasError",
    "CandidateError",
    "CandidateSyntaxError",
    "SpaceError",
    "UnknownSpaceError",
    "ReferenceNotFoundError",
    "ExportError",
]


class NasError(Exception):
    """Base class of every error the library raises on purpose."""


class CandidateError(NasError, ValueError):
    """A candidate is well formed but not a member of its search space."""


class CandidateSyntaxError(CandidateError):
    """A candidate key could not be parsed. ``position`` is the 0-based character offset."""

    def __init__(self, key: str, position: int, reason: str):
        self.key = key
        self.position = position
        self.reason = reason
        super().__init__(f"bad candidate key at position {position}: {reason} (key: {key!r})")


class SpaceError(NasError, ValueError):
    """A search space definition (YAML) is malformed."""


class UnknownSpaceError(SpaceError, KeyError):
    """No search space of that name exists. ``valid`` lists the names that do."""

    def __init__(self, name: str, valid: list[str]):
        self.name = name
        self.valid = valid
        super().__init__(f"unknown search space {name!r}; valid: {', '.join(valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ReferenceNotFoundError(SpaceError, KeyError):
    def __init__(self, space: str, name: str, valid: list[str]):
        self.space = space
        self.name = name
        self.valid = valid
        super().__init__(f"space {space!r} has no reference {name!r}; valid: {', '.join(valid)}")

    def __str__(self) -> str:
        return self.args[0]


class ExportError(NasError):
    """An exported model could not be written or does not match the torch model."""
