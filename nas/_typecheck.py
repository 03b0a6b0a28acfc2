"""One type check for values read from YAML files, flags and config.yaml: a wrong type is a
typed error naming where the value came from, never a crash further down."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["expect"]


def expect(value: Any, typ: type | tuple[type, ...], where: str, error: Callable[[str], Exception]) -> Any:
    """``value`` if it is a ``typ`` (a type or a tuple of types), else ``error(message)``.
    Booleans never pass as numbers; an int passes as (and becomes) a float where a float is
    expected."""
    types = typ if isinstance(typ, tuple) else (typ,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join("nothing" if t is type(None) else t.__name__ for t in types)
        raise error(f"{where}: expected {names}, got {value!r}")
    return value
