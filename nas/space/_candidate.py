"""Candidate (the genes of one network) and Block (one searchable block); OpSpec (one operator
instance, the unit of latency tables) lives in ``nas.space._opspec`` and is re-exported here.

Key grammar (canonical, human readable, round-trips exactly through ``Candidate.parse``)::

    key    := space ["." skeleton] ":r" RES ":w" WIDTH ":" stage ("/" stage)*
    stage  := block ("," block)*
    block  := op ["p" KEEP] ["b" BITS]
    op     := "k" K "e" E ["g" G]      inverted residual (MobileNet, FBNet): kernel, expansion, groups
            | "skip"                   FBNet skip (identity, or 1x1 projection when shapes change)
            | "k" K                    ShuffleNetV2 unit with a K x K depthwise conv
            | "x"                      ShuffleNetV2 Xception-style unit (three 3x3 depthwise convs)

``p`` (hidden-channel keep ratio, structured pruning) is written only when below 1 and ``b``
(bit width) only when below 32 (32 = float). The skeleton is written only when it is not
``default``. Numbers are written in their shortest form (``w1``, ``w0.35``, ``e2.5``);
anything else is rejected with the position of the offending character, so that one network
has exactly one key.

Example: ``mobilenetv2:r160:w0.75:k3e1/k5e6p0.5b8,k3e3b4/...``
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Protocol

from nas.errors import CandidateError, CandidateSyntaxError
from nas.space._opspec import FLOAT_BITS, OpSpec

__all__ = ["Block", "Candidate", "make_divisible", "format_number"]

DEFAULT_SKELETON = "default"


class SpaceDef(Protocol):
    """What a candidate needs of the space it was drawn from (``nas.space.SearchSpace`` is one):
    typed here as a protocol, so that this module does not import the one that imports it."""

    name: str

    def ops(self, cand: Candidate, resolution: int | None = None, num_classes: int = 1000,
            in_channels: int = 3) -> list[OpSpec]: ...

    def bind(self, cand: Candidate) -> Candidate: ...


_INTERNED: dict[tuple[Any, ...], Block] = {}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value``
    (default ``divisor``) and never more than 10% below ``value`` (torchvision, TF-slim)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * value:
        new_v += divisor
    return new_v


def pruned_channels(hidden: int, keep: float) -> int:
    """Hidden channels left after structured pruning: ``keep`` x hidden, rounded to a multiple
    of 8 like ``make_divisible``; an unpruned block (keep 1) keeps its exact width."""
    if keep >= 1.0:
        return hidden
    return min(hidden, make_divisible(hidden * keep, 8))


def format_number(x: float) -> str:
    """Shortest exact decimal form: 1.0 -> '1', 0.35 -> '0.35'."""
    if isinstance(x, bool) or not math.isfinite(float(x)):
        raise ValueError(f"not a finite number: {x!r}")
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


@dataclass(frozen=True)
class Block:
    """One searchable block: its op choice, channel keep-ratio and bit width."""

    kind: str  # "mb" | "skip" | "shuffle" | "xception"
    kernel: int = 3
    expansion: float = 1.0
    groups: int = 1
    keep: float = 1.0
    bits: int = FLOAT_BITS

    def __post_init__(self) -> None:
        # blocks are dictionary keys on the latency hot path: hash once
        object.__setattr__(self, "_hash", hash((self.kind, self.kernel, self.expansion,
                                                self.groups, self.keep, self.bits)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]  # set in __post_init__

    def __reduce__(self) -> tuple[Any, ...]:
        # re-intern on unpickling (in a Ray worker): the cached hash mixes in str hashes, which
        # differ between processes, so it must be recomputed there, never copied
        return _interned_block, (self.kind, self.kernel, self.expansion, self.groups, self.keep, self.bits)

    @classmethod
    def of(cls, kind: str, kernel: int, expansion: float, groups: int, keep: float, bits: int) -> "Block":
        """An interned Block: equal genes give the identical object (fast dictionary hits)."""
        key = (kind, kernel, float(expansion), groups, float(keep), bits)
        b = _INTERNED.get(key)
        if b is None:
            b = _INTERNED.setdefault(key, cls(kind, kernel, float(expansion), groups, float(keep), bits))
        return b

    @property
    def op(self) -> str:
        """The op part of the token (``k5e6``, ``k3e1g2``, ``skip``, ``k3``, ``x``)."""
        if self.kind == "mb":
            g = f"g{self.groups}" if self.groups != 1 else ""
            return f"k{self.kernel}e{format_number(self.expansion)}{g}"
        if self.kind == "shuffle":
            return f"k{self.kernel}"
        if self.kind == "xception":
            return "x"
        return "skip"

    @property
    def token(self) -> str:
        p = f"p{format_number(self.keep)}" if self.keep < 1.0 else ""
        b = f"b{self.bits}" if self.bits != FLOAT_BITS else ""
        return f"{self.op}{p}{b}"

    @classmethod
    def parse(cls, token: str) -> "Block":
        """Parse one block token; raises CandidateSyntaxError with a position in ``token``."""
        return _BlockParser(token, token, 0).parse()


def _interned_block(kind: str, kernel: int, expansion: float, groups: int, keep: float, bits: int) -> Block:
    """Unpickling hook (a module-level function, so pickles name it rather than copy it)."""
    return Block.of(kind, kernel, expansion, groups, keep, bits)


@dataclass(frozen=True)
class Candidate:
    """The genes of one network. Immutable; ``key`` is its one canonical string form.

    A candidate made by a space (``space.parse``, ``sample``, ``suggest``, ``reference``)
    carries that space (``search_space``), so that ``ops()`` runs the very definition it was
    drawn from, in any process: the space travels with the candidate (as its data when
    pickled), never as a name looked up in a process-global registry. ``Candidate.parse``
    alone reads the key grammar and returns an unbound candidate (``nas.parse_candidate``
    binds one to the built-in space its key names)."""

    space: str
    skeleton: str
    resolution: int
    width: float
    stages: tuple[tuple[Block, ...], ...]
    space_def: SpaceDef | None = field(default=None, compare=False, repr=False)  # the SearchSpace, if bound

    def __post_init__(self) -> None:
        # normalise lists to tuples so that equal candidates compare and hash equal
        object.__setattr__(self, "stages", tuple(tuple(s) for s in self.stages))
        object.__setattr__(self, "width", float(self.width))

    @cached_property
    def key(self) -> str:
        head = self.space if self.skeleton == DEFAULT_SKELETON else f"{self.space}.{self.skeleton}"
        body = "/".join(",".join(b.token for b in stage) for stage in self.stages)
        return f"{head}:r{self.resolution}:w{format_number(self.width)}:{body}"

    def __str__(self) -> str:
        return self.key

    @property
    def blocks(self) -> Iterator[Block]:
        for stage in self.stages:
            yield from stage

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    @property
    def is_quantized(self) -> bool:
        return any(b.bits < FLOAT_BITS for b in self.blocks)

    @classmethod
    def parse(cls, key: str, space: SpaceDef | None = None) -> "Candidate":
        """Parse a key (CandidateSyntaxError with the position on a malformed one). Given a
        ``SearchSpace``, the candidate is checked against it (CandidateError if it is not a
        buildable member) and bound to it; without one it is unbound (syntax only)."""
        cand = _KeyParser(key).parse()
        return cand if space is None else space.bind(cand)

    @property
    def search_space(self) -> SpaceDef:
        """The SearchSpace this candidate belongs to (CandidateError if unbound)."""
        if self.space_def is None:
            raise CandidateError(f"{self.key}: candidate is not bound to a search space; parse it with "
                                 f"space.parse(key) or nas.parse_candidate(key)")
        return self.space_def

    def ops(self, resolution: int | None = None, num_classes: int = 1000,
            in_channels: int = 3) -> list[OpSpec]:
        """Every operator of the network, stem to classifier, as the builder builds it.
        ``resolution`` other than the candidate's own builds the proxy variant (see
        ``SearchSpace.ops``)."""
        return self.search_space.ops(self, resolution=resolution, num_classes=num_classes,
                                     in_channels=in_channels)

    def replace_bits(self, bits: int) -> "Candidate":
        """The same network with every block at bit width ``bits``."""
        return self._map_blocks(lambda b: Block.of(b.kind, b.kernel, b.expansion, b.groups, b.keep, bits))

    def unpruned(self) -> "Candidate":
        """The same network with every keep ratio at 1 (bits unchanged): its unpruned parent."""
        return self._map_blocks(lambda b: Block.of(b.kind, b.kernel, b.expansion, b.groups, 1.0, b.bits))

    def _map_blocks(self, fn: Callable[[Block], Block]) -> Candidate:
        return dataclasses.replace(self, stages=tuple(tuple(fn(b) for b in s) for s in self.stages))

    def replace(self, **changes: Any) -> Candidate:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- parsing

_NUM = re.compile(r"\d+(\.\d+)?")
_INT = re.compile(r"\d+")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class _Cursor:
    def __init__(self, key: str, text: str, offset: int):
        self.key, self.text, self.offset, self.i = key, text, offset, 0

    def fail(self, reason: str, at: int | None = None) -> CandidateSyntaxError:
        return CandidateSyntaxError(self.key, self.offset + (self.i if at is None else at), reason)

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def take(self, literal: str) -> bool:
        if self.text.startswith(literal, self.i):
            self.i += len(literal)
            return True
        return False

    def expect(self, literal: str, what: str) -> None:
        if not self.take(literal):
            got = repr(self.peek()) if self.peek() else "end of key"
            raise self.fail(f"expected {what} ({literal!r}), got {got}")

    def name(self, what: str) -> str:
        m = _NAME.match(self.text, self.i)
        if not m:
            raise self.fail(f"expected {what} (lower-case name)")
        self.i = m.end()
        return m.group(0)

    def integer(self, what: str, lo: int, hi: int) -> int:
        m = _INT.match(self.text, self.i)
        if not m:
            raise self.fail(f"expected {what} (a whole number)")
        s, start = m.group(0), self.i
        if len(s) > 1 and s[0] == "0":
            raise self.fail(f"{what} {s!r} has a leading zero", start)
        self.i = m.end()
        v = int(s)
        if not lo <= v <= hi:
            raise self.fail(f"{what} {v} out of range [{lo}, {hi}]", start)
        return v

    def number(self, what: str, lo: float, hi: float) -> float:
        m = _NUM.match(self.text, self.i)
        if not m:
            raise self.fail(f"expected {what} (a number)")
        s, start = m.group(0), self.i
        self.i = m.end()
        v = float(s)
        if not lo <= v <= hi:
            raise self.fail(f"{what} {s} out of range [{format_number(lo)}, {format_number(hi)}]", start)
        canon = format_number(v)
        if s != canon:
            raise self.fail(f"{what} {s!r} is not in canonical form (write {canon!r})", start)
        return v


class _BlockParser(_Cursor):
    def parse(self) -> Block:
        if not self.text:
            raise self.fail("empty block (two separators in a row?)")
        if self.take("skip"):
            kind, kernel, exp, groups = "skip", 1, 1.0, 1
        elif self.take("x"):
            kind, kernel, exp, groups = "xception", 3, 1.0, 1
        elif self.take("k"):
            kernel = self.integer("kernel size", 1, 15)
            if kernel % 2 == 0:
                raise self.fail(f"kernel size {kernel} must be odd", self.i - len(str(kernel)))
            if self.take("e"):
                kind, exp = "mb", self.number("expansion ratio", 0.01, 16)
                groups = self.integer("group count", 2, 64) if self.take("g") else 1
            else:
                kind, exp, groups = "shuffle", 1.0, 1
        else:
            raise self.fail("expected an op: 'k<kernel>e<expansion>', 'k<kernel>', 'x' or 'skip'")
        keep = 1.0
        if self.take("p"):
            keep = self.number("keep ratio", 0.01, 1)
            if keep == 1.0:
                raise self.fail("keep ratio 1 is the default: leave 'p1' out", self.i - 2)
        bits = FLOAT_BITS
        if self.take("b"):
            bits = self.integer("bit width", 1, 32)
            if bits == FLOAT_BITS:
                raise self.fail("bit width 32 (float) is the default: leave 'b32' out", self.i - 3)
        if self.i != len(self.text):
            raise self.fail(f"unexpected {self.peek()!r} after block {self.text[:self.i]!r}")
        return Block.of(kind, kernel, exp, groups, keep, bits)


class _KeyParser(_Cursor):
    def __init__(self, key: str):
        if not isinstance(key, str):
            raise CandidateSyntaxError(repr(key), 0, "a candidate key must be a string")
        super().__init__(key, key, 0)

    def parse(self) -> Candidate:
        key = self.key
        if not key:
            raise self.fail("empty key")
        if key != key.strip():
            raise self.fail("leading or trailing white space")
        space = self.name("search space name")
        skeleton = DEFAULT_SKELETON
        if self.take("."):
            skeleton = self.name("skeleton name")
            if skeleton == DEFAULT_SKELETON:
                raise self.fail("the 'default' skeleton is implied: leave '.default' out",
                                self.i - len(DEFAULT_SKELETON) - 1)
        self.expect(":r", "resolution")
        resolution = self.integer("resolution", 8, 4096)
        self.expect(":w", "width")
        width = self.number("width", 0.01, 16)
        self.expect(":", "':' before the blocks")
        stages = []
        for stage_text, stage_off in _split(key, self.i, "/"):
            blocks = []
            for tok, off in _split(stage_text, 0, ","):
                blocks.append(_BlockParser(key, tok, stage_off + off).parse())
            stages.append(tuple(blocks))
        return Candidate(space=space, skeleton=skeleton, resolution=resolution, width=width,
                         stages=tuple(stages))


def _split(text: str, start: int, sep: str) -> list[tuple[str, int]]:
    """Split text[start:] on sep, returning (piece, offset of piece in text)."""
    out, pos = [], start
    for piece in text[start:].split(sep):
        out.append((piece, pos))
        pos += len(piece) + 1
    return out
