"""Search spaces: the domain (skeletons, stages, genes) and the one place genes become
operators. Reading them from ``search_spaces/<name>.yaml`` is ``nas.space._files``.

A space has one or more *skeletons* (macro structures: stem, stages, head). A stage fixes its
output channels (at width 1, or from a width table), its stride, whether it uses squeeze-excite
and which activation; the searched genes are the stage depth and, per block, the op, the hidden
channel keep-ratio and the bit width. Space-level genes: skeleton, input resolution, width.

``SearchSpace.ops`` is the single place that turns genes into operators: the model builder
builds exactly these ops and device profiles price exactly these ops.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from nas.errors import CandidateError, ReferenceNotFoundError
from nas.space._candidate import Block, Candidate, format_number, make_divisible, pruned_channels
from nas.space._opspec import FLOAT_BITS, OpSpec

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchSpace", "Stage", "Skeleton", "FAMILIES", "ACTIVATIONS"]

FAMILIES = ("mbconv", "shufflenet")
ACTIVATIONS = ("relu", "relu6", "hswish", "none")
PROXY_MIN_FEATURE = 2  # smallest final feature map kept when building for a small proxy input (cost: BENCHMARKS.md)


@dataclass(frozen=True)
class Stage:
    channels: int  # at width 1 (multiplier mode) or the index into the width table
    stride: int
    depth: tuple[int, ...]
    ops: tuple[str, ...]
    keep: tuple[float, ...]
    bits: tuple[int, ...]
    se: bool = False
    act: str = "relu"


@dataclass(frozen=True)
class Skeleton:
    name: str
    stem: dict[str, Any]
    stages: tuple[Stage, ...]
    head: dict[str, Any] | None
    classifier: tuple[dict[str, Any], ...]
    maxpool: bool
    resolutions: tuple[int, ...]


@dataclass
class SearchSpace:
    name: str
    family: str
    description: str
    skeletons: dict[str, Skeleton]
    width_mode: str  # "multiplier" | "table"
    widths: tuple[float, ...]
    width_table: dict[float, dict[str, Any]]
    expand_when_e1: bool
    bits_choices: tuple[int, ...]
    source: Path | None = None
    _references: dict[str, Candidate] = field(default_factory=dict, repr=False)
    _published: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- public API
    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted({r for sk in self.skeletons.values() for r in sk.resolutions}))

    def references(self) -> list[str]:
        """Names of the reference networks of this space."""
        return list(self._references)

    def reference(self, name: str) -> Candidate:
        try:
            return self._references[name]
        except KeyError:
            raise ReferenceNotFoundError(self.name, name, self.references()) from None

    def published(self, name: str) -> dict[str, float] | None:
        """Published ``{"macs_m", "params_m"}`` of a reference network, if the YAML has them."""
        self.reference(name)
        return self._published.get(name)

    def bind(self, cand: Candidate) -> Candidate:
        """``cand`` checked against this space (CandidateError if it is not a buildable
        network of it) and bound to it, so that its ``ops()`` run this definition."""
        cand = cand if cand.space_def is self else cand.replace(space_def=self)
        self.validate(cand)
        return cand

    def parse(self, key: str) -> Candidate:
        """The candidate of this space that ``key`` spells (syntax and membership checked)."""
        return self.bind(Candidate.parse(key))

    def sample_many(self, n: int, seed: int) -> list[Candidate]:
        """``n`` candidates drawn with ``random.Random(seed)`` (the same list for the same seed)."""
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]

    def sample(self, rng: random.Random) -> Candidate:
        """A uniformly chosen candidate (each gene uniform among its choices)."""
        return self._build(lambda _name, choices: rng.choice(list(choices)))

    def suggest(self, trial: optuna.trial.BaseTrial) -> Candidate:
        """Ask an Optuna trial for every gene (define-by-run, conditional on depth and op)."""
        return self._build(lambda name, choices: trial.suggest_categorical(name, list(choices)))

    def largest(self) -> Candidate:
        """The largest float, unpruned candidate (most MACs over the skeletons; per block the
        op with the largest expansion, then kernel): the default distillation teacher."""
        def choose_for(skel: str) -> Callable[[str, Sequence[Any]], Any]:
            def choose(name: str, choices: Sequence[Any]) -> Any:
                if name == "skeleton":
                    return skel
                if name.endswith(".op"):
                    return max(choices, key=lambda t: (Block.parse(t).expansion, Block.parse(t).kernel, str(t)))
                return max(choices)  # resolution, width, depth, keep, bits
            return choose

        cands = [self._build(choose_for(name)) for name in self.skeletons]
        return max(cands, key=lambda c: (sum(op.macs for op in self.ops(c)), c.key))

    def smallest(self, skeleton: str | None = None) -> Candidate:
        """The smallest float candidate of ``skeleton`` (default: the one with the fewest MACs
        over the skeletons): per gene the lowest choice (per block the op with the smallest
        expansion, then kernel; the lowest keep ratio), the mirror of ``largest``."""
        def choose_for(skel: str) -> Callable[[str, Sequence[Any]], Any]:
            def choose(name: str, choices: Sequence[Any]) -> Any:
                if name == "skeleton":
                    return skel
                if name.endswith(".op"):
                    return min(choices, key=lambda t: (Block.parse(t).expansion, Block.parse(t).kernel, str(t)))
                if name.endswith(".bits"):
                    return max(choices)
                return min(choices)  # resolution, width, depth, keep
            return choose

        names = [skeleton] if skeleton is not None else list(self.skeletons)
        cands = [self._build(choose_for(name)) for name in names]
        return min(cands, key=lambda c: (sum(op.macs for op in self.ops(c)), c.key))

    def num_candidates(self) -> int:
        """Exact number of distinct candidates in the searched domain."""
        total = 0
        for sk in self.skeletons.values():
            n = len(sk.resolutions) * len(self.widths)
            for st in sk.stages:
                per_block = sum((len(st.keep) if self._prunable(Block.parse(op)) else 1)
                                * len(st.bits) for op in st.ops)
                n *= sum(per_block ** d for d in st.depth)
            total += n
        return total

    def contains(self, cand: Candidate) -> bool:
        """Whether ``cand`` lies in the searched domain (references need not)."""
        try:
            self.validate(cand)
        except CandidateError:
            return False
        sk = self.skeletons[cand.skeleton]
        if cand.resolution not in sk.resolutions or cand.width not in self.widths:
            return False
        for st, blocks in zip(sk.stages, cand.stages):
            if len(blocks) not in st.depth:
                return False
            for b in blocks:
                if b.op not in st.ops or b.bits not in st.bits:
                    return False
                if self._prunable(b) and b.keep not in st.keep:
                    return False
        return True

    def validate(self, cand: Candidate) -> None:
        """Raise CandidateError unless ``cand`` is a buildable network of this space."""
        def bad(msg: str) -> CandidateError:
            return CandidateError(f"{cand.key}: {msg}")

        if cand.space != self.name:
            raise bad(f"belongs to space {cand.space!r}, not {self.name!r}")
        if cand.skeleton not in self.skeletons:
            raise bad(f"space {self.name!r} has no skeleton {cand.skeleton!r}; "
                      f"valid: {', '.join(self.skeletons)}")
        sk = self.skeletons[cand.skeleton]
        if cand.resolution < 16:
            raise bad(f"resolution {cand.resolution} is below 16")
        if self.width_mode == "table" and cand.width not in self.width_table:
            raise bad(f"width {format_number(cand.width)} is not one of "
                      f"{', '.join(format_number(w) for w in self.width_table)}")
        if self.width_mode == "multiplier" and not 0.05 <= cand.width <= 4:
            raise bad(f"width {format_number(cand.width)} outside [0.05, 4]")
        if len(cand.stages) != len(sk.stages):
            raise bad(f"has {len(cand.stages)} stages, skeleton {sk.name!r} has {len(sk.stages)}")
        for i, (st, blocks) in enumerate(zip(sk.stages, cand.stages), start=1):
            lo, hi = min(st.depth), max(st.depth)
            if not lo <= len(blocks) <= hi:
                raise bad(f"stage {i} has {len(blocks)} blocks, allowed {lo}..{hi}")
            for j, b in enumerate(blocks, start=1):
                where = f"stage {i} block {j} ({b.token})"
                allowed = ("mb", "skip") if self.family == "mbconv" else ("shuffle", "xception")
                if b.kind not in allowed:
                    raise bad(f"{where}: op {b.op!r} is not a {self.family} op")
                if b.kind == "skip" and "skip" not in st.ops:
                    raise bad(f"{where}: this stage has no skip op")
                if b.kind == "mb" and b.groups > 1 and not self.expand_when_e1:
                    raise bad(f"{where}: grouped 1x1 convs need an expansion conv")
                if b.bits not in self.bits_choices:
                    raise bad(f"{where}: bit width {b.bits} not one of "
                              f"{', '.join(map(str, self.bits_choices))}")
                if b.keep < 1 and not self._prunable(b):
                    raise bad(f"{where}: this op has no hidden channels to prune (keep must be 1)")
        # channel arithmetic (groups must divide channels) is checked by building the ops
        for op in self.ops(cand):
            if op.hidden and op.hidden % op.groups:
                raise bad(f"{op.hidden} hidden channels are not divisible by {op.groups} groups")

    def ops(self, cand: Candidate, resolution: int | None = None, num_classes: int = 1000,
            in_channels: int = 3) -> list[OpSpec]:
        """The operators of ``cand``, stem to classifier (see ``plan``)."""
        return [op for _, op in self.plan(cand, resolution, num_classes, in_channels)]

    def plan(self, cand: Candidate, resolution: int | None = None, num_classes: int = 1000,
             in_channels: int = 3) -> list[tuple[tuple[int, int] | None, OpSpec]]:
        """The operators of ``cand``, stem to classifier, each tagged with the (stage, block)
        index it implements, or None for stem, pooling, head and classifier.

        At the candidate's own resolution this is the target network. At another
        ``resolution`` (a proxy input such as 32x32) the earliest stride-2 layers become
        stride 1, as few as needed for the last feature map to be at least
        min(PROXY_MIN_FEATURE = 2, target's last feature map) pixels wide; channels, ops, bits and keep ratios
        are unchanged, so the proxy network has the same weights' shapes as the target.
        """
        sk = self.skeletons.get(cand.skeleton)
        if sk is None:
            raise CandidateError(f"{cand.key}: no skeleton {cand.skeleton!r} in {self.name!r}")
        res = resolution or cand.resolution
        strides = [sk.stem["stride"]] + ([2] if sk.maxpool else []) + [s.stride for s in sk.stages]
        stride_iter = iter(_effective_strides(cand.resolution, res, strides))
        edge_bits = 8 if cand.is_quantized else FLOAT_BITS
        w = cand.width

        ops: list[tuple[tuple[int, int] | None, OpSpec]] = []
        h = res
        stem_c = self._channels(sk.stem["channels"], w, kind="stem", fixed=sk.stem.get("fixed", False))
        s = next(stride_iter)
        ops.append((None, OpSpec("conv", h, h, in_channels, stem_c, kernel=sk.stem["kernel"],
                                 stride=s, act=sk.stem["act"], bits=edge_bits)))
        h, c = ops[-1][1].out_hw[0], stem_c
        if sk.maxpool:
            s = next(stride_iter)
            ops.append((None, OpSpec("maxpool", h, h, c, c, kernel=3, stride=s)))
            h = ops[-1][1].out_hw[0]
        for si, (st, blocks) in enumerate(zip(sk.stages, cand.stages)):
            cout = self._channels(st.channels, w, kind="stage", index=si)
            stage_stride = next(stride_iter)
            for bi, b in enumerate(blocks):
                stride = stage_stride if bi == 0 else 1
                op = self._block_op(b, h, c, cout, st, stride)
                if op is not None:
                    ops.append(((si, bi), op))
                    h = op.out_hw[0]
                c = cout
        if sk.head is not None:
            head_c = self._channels(sk.head["channels"], w, kind="head",
                                    shrink=sk.head.get("shrink", True), fixed=sk.head.get("fixed", False))
            ops.append((None, OpSpec("conv", h, h, c, head_c, kernel=1, stride=1,
                                     act=sk.head["act"], bits=edge_bits)))
            c = head_c
        ops.append((None, OpSpec("gap", h, h, c, c)))
        for fc in sk.classifier:
            fc_c = self._channels(fc["channels"], w, kind="head", shrink=fc.get("shrink", True),
                                  fixed=fc.get("fixed", False))
            ops.append((None, OpSpec("linear", 1, 1, c, fc_c, act=fc["act"], bits=edge_bits)))
            c = fc_c
        ops.append((None, OpSpec("linear", 1, 1, c, num_classes, bits=edge_bits)))
        return ops

    def slots(self, cand: Candidate, resolution: int | None = None, num_classes: int = 1000,
              in_channels: int = 3) -> list[tuple[str, OpSpec]]:
        """``plan`` with each operator named by the place it fills in its skeleton, the same for
        every candidate: ``SKEL/pre0`` (stem), ``SKEL/pre1`` (max pool), ``SKEL/s2b0`` (stage 2,
        block 0), ``SKEL/post0`` (the last classifier layer), ``SKEL/post1`` ... counted from
        the end. A weight-sharing supernet keeps one set of weights per slot (and op family)."""
        sk = self.skeletons[cand.skeleton]
        plan = self.plan(cand, resolution, num_classes, in_channels)
        n_lead = 1 + int(sk.maxpool)
        out = []
        for i, (pos, op) in enumerate(plan):
            if pos is not None:
                name = f"s{pos[0]}b{pos[1]}"
            elif i < n_lead:
                name = f"pre{i}"
            else:
                name = f"post{len(plan) - 1 - i}"
            out.append((f"{sk.name}/{name}", op))
        return out

    def all_slots(self, num_classes: int = 1000, in_channels: int = 3) -> set[tuple[str, OpSpec]]:
        """Every (slot, operator) a candidate of the searched domain can hold, at every width,
        float and quantized, unpruned (pruning only narrows an operator): what a supernet must
        hold the weights of. Shapes do not depend on the resolution; the skeleton's largest is
        used."""
        out: set[tuple[str, OpSpec]] = set()
        for sk in self.skeletons.values():
            res = max(sk.resolutions)
            for w in self.widths:
                stages = tuple(tuple(Block.parse(st.ops[0]) for _ in range(max(st.depth))) for st in sk.stages)
                base = Candidate(self.name, sk.name, res, w, stages, space_def=self)
                for cand in (base, base.replace_bits(min(self.bits_choices))):
                    for slot, op in self.slots(cand, num_classes=num_classes, in_channels=in_channels):
                        if "/s" not in slot:
                            out.add((slot, op))
                # blocks: every op of every position, unpruned, float and at the lowest bits
                for si, pos, st, hh, cin, cout, stride in self._block_positions(sk, res, w):
                    for op_tok in st.ops:
                        blk = Block.parse(op_tok)
                        for bits in {FLOAT_BITS, min(st.bits)}:
                            b = Block.of(blk.kind, blk.kernel, blk.expansion, blk.groups, 1.0, bits)
                            block_op = self._block_op(b, hh, cin, cout, st, stride)
                            if block_op is not None:
                                out.add((f"{sk.name}/s{si}b{pos}", block_op))
        return out

    def _block_positions(self, sk: Skeleton, res: int,
                         w: float) -> Iterator[tuple[int, int, Stage, int, int, int, int]]:
        """Every block position of skeleton ``sk`` at resolution ``res`` and width ``w``:
        (stage index, position, stage, input side, input channels, output channels, stride).
        The shape entering a position does not depend on the genes (skip ops keep shapes)."""
        h = res
        for s in [sk.stem["stride"]] + ([2] if sk.maxpool else []):
            h = -(-h // s)
        c = self._channels(sk.stem["channels"], w, kind="stem", fixed=sk.stem.get("fixed", False))
        for si, st in enumerate(sk.stages):
            cout = self._channels(st.channels, w, kind="stage", index=si)
            for pos in range(max(st.depth)):
                yield (si, pos, st, h if pos == 0 else -(-h // st.stride), c if pos == 0 else cout, cout,
                       st.stride if pos == 0 else 1)
            h = -(-h // st.stride)
            c = cout

    def all_ops(self, num_classes: int = 1000, in_channels: int = 3) -> set[OpSpec]:
        """Every OpSpec that a candidate of the searched domain can contain at its target
        resolution (for building latency tables ahead of a search)."""
        out: set[OpSpec] = set()
        for sk in self.skeletons.values():
            for res in sk.resolutions:
                for w in self.widths:
                    out |= self._all_ops_for(sk, res, w, num_classes, in_channels)
        return out

    # ----------------------------------------------------------------- internals
    def _all_ops_for(self, sk: Skeleton, res: int, w: float, num_classes: int,
                     in_channels: int) -> set[OpSpec]:
        # Stem, maxpool, head and classifier do not depend on the block genes (only on the
        # resolution, width and whether the network is quantized): take them from a minimal
        # candidate. The shape entering each stage does not depend on the genes either (skip
        # ops keep shapes), so each block position can be enumerated on its own.
        stages = tuple(tuple(Block.parse(st.ops[0]) for _ in range(min(st.depth)))
                       for st in sk.stages)
        base = Candidate(self.name, sk.name, res, w, stages, space_def=self)
        n_lead = 1 + int(sk.maxpool)
        n_tail = int(sk.head is not None) + 1 + len(sk.classifier) + 1
        out: set[OpSpec] = set()
        for cand in (base, base.replace_bits(8)):
            ops = self.ops(cand, num_classes=num_classes, in_channels=in_channels)
            out.update(ops[:n_lead] + ops[-n_tail:])
        # blocks: enumerate every (position, op, keep, bits) per stage
        for _si, _pos, st, hh, cin, cout, stride in self._block_positions(sk, res, w):
            for op_tok in st.ops:
                blk = Block.parse(op_tok)
                keeps = st.keep if self._prunable(blk) else (1.0,)
                for keep in keeps:
                    for bits in st.bits:
                        b = Block.of(blk.kind, blk.kernel, blk.expansion, blk.groups, keep, bits)
                        op = self._block_op(b, hh, cin, cout, st, stride)
                        if op is not None:
                            out.add(op)
        return out

    def _prunable(self, b: Block) -> bool:
        if b.kind == "mb":
            return b.expansion != 1 or self.expand_when_e1
        return b.kind in ("shuffle", "xception")

    def _channels(self, base: int, w: float, kind: str, index: int = 0, shrink: bool = True,
                  fixed: bool = False) -> int:
        """Channels of a layer at width ``w``: from the width table, else ``base`` scaled by
        ``w`` (never below ``base`` when not ``shrink``; not scaled at all when ``fixed``, as
        EfficientNet-Lite's stem and head)."""
        if self.width_mode == "table":
            row = self.width_table[w]
            if kind == "stage":
                return int(row["stages"][index])
            return int(row[kind])
        if fixed:
            return base
        return make_divisible(base * (w if shrink else max(1.0, w)), 8)

    def _block_op(self, b: Block, h: int, cin: int, cout: int, st: Stage,
                  stride: int) -> OpSpec | None:
        if b.kind == "skip":
            if cin == cout and stride == 1:
                return None  # identity: no operator at all
            return OpSpec("conv", h, h, cin, cout, kernel=1, stride=stride, act="relu", bits=b.bits)
        if b.kind == "mb":
            expand = b.expansion != 1 or self.expand_when_e1
            # expanded width from the block's actual input (TF-slim's expand_input_by_factor)
            full = make_divisible(cin * b.expansion, 8)
            hidden = pruned_channels(full, b.keep) if expand else cin
            se = make_divisible(hidden // 4, 8) if st.se else 0
            return OpSpec("mbconv", h, h, cin, cout, hidden=hidden, kernel=b.kernel, stride=stride,
                          groups=b.groups, se=se, act=st.act, bits=b.bits, expand=expand)
        mid = pruned_channels(cout // 2, b.keep)
        kind = "shuffle" if b.kind == "shuffle" else "shuffle_x"
        return OpSpec(kind, h, h, cin, cout, hidden=mid, kernel=b.kernel, stride=stride,
                      act=st.act, bits=b.bits)

    def _build(self, choose: Callable[[str, Sequence[Any]], Any]) -> Candidate:
        names = list(self.skeletons)
        skel = choose("skeleton", names) if len(names) > 1 else names[0]
        sk = self.skeletons[skel]
        prefix = f"{skel}." if len(names) > 1 else ""

        def pick(name: str, choices: Sequence[Any]) -> Any:
            return choices[0] if len(choices) == 1 else choose(prefix + name, choices)

        resolution = pick("resolution", sk.resolutions)
        width = float(choose("width", self.widths)) if len(self.widths) > 1 else self.widths[0]
        stages = []
        for i, st in enumerate(sk.stages, start=1):
            depth = pick(f"s{i}.depth", st.depth)
            blocks = []
            for j in range(1, depth + 1):
                op = Block.parse(pick(f"s{i}.b{j}.op", st.ops))
                keep = float(pick(f"s{i}.b{j}.keep", st.keep)) if self._prunable(op) else 1.0
                bits = int(pick(f"s{i}.b{j}.bits", st.bits))
                blocks.append(Block.of(op.kind, op.kernel, op.expansion, op.groups, keep, bits))
            stages.append(tuple(blocks))
        return Candidate(self.name, skel, int(resolution), width, tuple(stages), space_def=self)


def _effective_strides(target_res: int, res: int, strides: list[int]) -> list[int]:
    """The strides of the leading strided layers at input ``res``: the earliest stride-2
    layers run at stride 1, as few as needed for the last feature map to reach
    min(PROXY_MIN_FEATURE, the target's last feature map)."""
    want = min(PROXY_MIN_FEATURE, -(-target_res // math.prod(strides)))
    out = list(strides)
    for i, s in enumerate(strides):
        if -(-res // math.prod(out)) >= want:
            break
        if s > 1:
            out[i] = 1
    return out
