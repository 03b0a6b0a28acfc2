"""Reading search spaces from YAML (``search_spaces/<name>.yaml``, or any path) into
``SearchSpace`` objects, naming the file and field on every error; and resolving keys and
reference names to candidates bound to their space.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from nas._paths import data_names, is_path_like, read_yaml, resolve_yaml
from nas._typecheck import expect
from nas.errors import CandidateError, SpaceError, UnknownSpaceError
from nas.space._candidate import DEFAULT_SKELETON, Block, Candidate, format_number
from nas.space._opspec import FLOAT_BITS
from nas.space._space import ACTIVATIONS, FAMILIES, SearchSpace, Skeleton, Stage

__all__ = ["load_space", "space_names", "parse_candidate"]


_lock = threading.Lock()
_builtin: dict[str, SearchSpace] = {}  # built-in files only, by name: a memo, never a registry


def space_names() -> list[str]:
    """Names of the built-in spaces (files in search_spaces/)."""
    return data_names("search_spaces")


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A built-in space by name, or the space a YAML file at a path defines.

    A path is read every time and is what runs: it never shadows, nor is shadowed by, a
    built-in space of the same name (its candidates carry the object, see ``Candidate``)."""
    text = str(name_or_path)
    if not is_path_like(text):
        with _lock:
            if text in _builtin:
                return _builtin[text]
    path = resolve_yaml("search_spaces", text,
                        lambda p: SpaceError(f"search space file not found: {p}"), UnknownSpaceError)
    space = _SpaceReader(path).read(read_yaml(path, SpaceError))
    if not is_path_like(text):
        if space.name != text:
            raise SpaceError(f"{path}: 'name' is {space.name!r} but the file is {text}.yaml")
        with _lock:
            space = _builtin.setdefault(text, space)
    return space


def parse_candidate(text: str, space: SearchSpace | str | None = None) -> Candidate:
    """A candidate key, or the name of a reference network, as a candidate bound to its space:
    ``space`` (an object, a built-in name or a YAML path), else the built-in space the key
    names (for a reference name: the built-in space that has it)."""
    if isinstance(space, (str, Path)):
        space = load_space(space)
    if isinstance(text, str) and text and ":" not in text:
        for s in [space] if space is not None else [load_space(n) for n in space_names()]:
            if text in s.references():
                return s.reference(text)
        raise CandidateError(f"{text!r} is neither a candidate key nor a reference name "
                             f"(`nas space show SPACE` lists the references)")
    cand = Candidate.parse(text)
    return (space or load_space(cand.space)).bind(cand)


class _SpaceReader:
    """Turns the YAML mapping into a SearchSpace, naming file and field on every error."""

    def __init__(self, path: Path):
        self.path = path

    def err(self, where: str, msg: str) -> SpaceError:
        return SpaceError(f"{self.path}: {where}: {msg}")

    def get(self, d: Any, key: str, where: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
        if not isinstance(d, dict):
            raise self.err(where, f"expected a mapping, got {type(d).__name__}")
        if key not in d:
            if default is ...:
                raise self.err(where, f"missing field {key!r}")
            return default
        return expect(d[key], typ, f"{self.path}: {where}.{key}", SpaceError)

    def num_list(self, d: dict[str, Any], key: str, where: str, typ: type | tuple[type, ...],
                 default: Any = ...) -> Any:
        v = self.get(d, key, where, list, default)
        if v is default and default is not ...:
            return tuple(v) if v is not None else None
        if not v:
            raise self.err(f"{where}.{key}", "empty list")
        return tuple(expect(x, typ, f"{self.path}: {where}.{key}: list item", SpaceError) for x in v)

    def read(self, raw: Any) -> SearchSpace:
        if not isinstance(raw, dict):
            raise self.err("top level", "expected a mapping")
        name = self.get(raw, "name", "top level", str)
        family = self.get(raw, "family", "top level", str)
        if family not in FAMILIES:
            raise self.err("family", f"{family!r} is not one of {', '.join(FAMILIES)}")
        widths_raw = self.get(raw, "widths", "top level", dict)
        mode = self.get(widths_raw, "mode", "widths", str)
        table: dict[float, dict[str, Any]] = {}
        if mode == "multiplier":
            widths = self.num_list(widths_raw, "choices", "widths", float)
        elif mode == "table":
            choices = self.get(widths_raw, "choices", "widths", dict)
            for wk, row in choices.items():
                if not isinstance(wk, (int, float)):
                    raise self.err("widths.choices", f"width {wk!r} is not a number")
                where = f"widths.choices.{wk}"
                table[float(wk)] = {"stem": self.get(row, "stem", where, int),
                                    "stages": self.num_list(row, "stages", where, int),
                                    "head": self.get(row, "head", where, int)}
            widths = tuple(table)
        else:
            raise self.err("widths.mode", "must be 'multiplier' or 'table'")
        bits = self.num_list(raw, "bits", "top level", int)
        keep = self.num_list(raw, "keep", "top level", float)
        for k in keep:
            if not 0 < k <= 1:
                raise self.err("keep", f"keep ratio {k} outside (0, 1]")
        default_ops = self._ops(raw, "top level", family, None)
        resolutions = self.num_list(raw, "resolutions", "top level", int)
        skeletons: dict[str, Skeleton] = {}
        sk_raw = self.get(raw, "skeletons", "top level", dict)
        if not sk_raw:
            raise self.err("skeletons", "no skeleton defined")
        for sk_name, skd in sk_raw.items():
            where = f"skeletons.{sk_name}"
            stem = self.get(skd, "stem", where, dict)
            stem = {"channels": self.get(stem, "channels", f"{where}.stem", int),
                    "kernel": self.get(stem, "kernel", f"{where}.stem", int, 3),
                    "stride": self.get(stem, "stride", f"{where}.stem", int, 2),
                    "act": self._act(stem, f"{where}.stem"),
                    "fixed": self.get(stem, "fixed", f"{where}.stem", bool, False)}
            stages = []
            for i, sd in enumerate(self.get(skd, "stages", where, list), start=1):
                sw = f"{where}.stages[{i}]"
                ch = self.get(sd, "channels", sw, int, 0 if mode == "table" else ...)
                st = Stage(channels=ch,
                           stride=self.get(sd, "stride", sw, int, 1),
                           depth=self.num_list(sd, "depth", sw, int),
                           ops=self._ops(sd, sw, family, default_ops),
                           keep=self.num_list(sd, "keep", sw, float, list(keep)),
                           bits=self.num_list(sd, "bits", sw, int, list(bits)),
                           se=self.get(sd, "se", sw, bool, False),
                           act=self._act(sd, sw))
                if st.stride not in (1, 2):
                    raise self.err(f"{sw}.stride", "must be 1 or 2")
                if min(st.depth) < 1:
                    raise self.err(f"{sw}.depth", "depths must be at least 1")
                if not set(st.bits) <= set(bits):
                    raise self.err(f"{sw}.bits", "must be a subset of the space's bits")
                stages.append(st)
            head = self.get(skd, "head", where, dict, None)
            if head is not None:
                head = {"channels": self.get(head, "channels", f"{where}.head", int),
                        "act": self._act(head, f"{where}.head"),
                        "shrink": self.get(head, "shrink", f"{where}.head", bool, True),
                        "fixed": self.get(head, "fixed", f"{where}.head", bool, False)}
            classifier = []
            for j, fc in enumerate(self.get(skd, "classifier", where, list, []), start=1):
                fw = f"{where}.classifier[{j}]"
                classifier.append({"channels": self.get(fc, "channels", fw, int),
                                   "act": self._act(fc, fw),
                                   "shrink": self.get(fc, "shrink", fw, bool, True),
                                   "fixed": self.get(fc, "fixed", fw, bool, False)})
            sk_res = self.num_list(skd, "resolutions", where, int, list(resolutions))
            skeletons[str(sk_name)] = Skeleton(
                name=str(sk_name), stem=stem, stages=tuple(stages), head=head,
                classifier=tuple(classifier),
                maxpool=self.get(skd, "maxpool", where, bool, False), resolutions=sk_res)
            if mode == "table":
                for wk, row in table.items():
                    if len(row["stages"]) != len(stages):
                        raise self.err(f"widths.choices.{wk}.stages",
                                       f"{len(row['stages'])} widths for {len(stages)} stages "
                                       f"of skeleton {sk_name!r}")
        if len(skeletons) == 1 and DEFAULT_SKELETON not in skeletons:
            raise self.err("skeletons", "a space with one skeleton must call it 'default'")
        space = SearchSpace(
            name=name, family=family,
            description=self.get(raw, "description", "top level", str, "").strip(),
            skeletons=skeletons, width_mode=mode, widths=widths, width_table=table,
            expand_when_e1=self.get(raw, "expand_when_e1", "top level", bool, False),
            bits_choices=tuple(sorted(set(bits) | {FLOAT_BITS})), source=self.path)
        space._references = self._references(raw, space)
        for ref, fig in self.get(raw, "published", "top level", dict, {}).items():
            if ref not in space._references:
                raise self.err("published", f"{ref!r} is not a reference of this space")
            space._published[ref] = {"macs_m": self.get(fig, "macs_m", f"published.{ref}", float),
                                     "params_m": self.get(fig, "params_m", f"published.{ref}", float)}
        return space

    def _act(self, d: dict[str, Any], where: str) -> str:
        act = self.get(d, "act", where, str, "none")
        if act not in ACTIVATIONS:
            raise self.err(f"{where}.act", f"{act!r} is not one of {', '.join(ACTIVATIONS)}")
        return str(act)

    def _ops(self, d: dict[str, Any], where: str, family: str, default: tuple[Any, ...] | None) -> tuple[str, ...]:
        """Op choices: an explicit ``ops`` list, or ``kernels`` x ``expansions``."""
        if "ops" in d:
            ops = [str(o) for o in self.get(d, "ops", where, list)]
        elif "kernels" in d or "expansions" in d:
            ks = self.num_list(d, "kernels", where, int, list(_tokens_field(default, "k")))
            es = self.num_list(d, "expansions", where, float, list(_tokens_field(default, "e")))
            ops = [f"k{k}e{format_number(e)}" for k in ks for e in es]
        elif default is not None:
            return default
        else:
            raise self.err(where, "missing 'ops' (or 'kernels' and 'expansions')")
        for op in ops:
            try:
                blk = Block.parse(op)
            except CandidateError as exc:
                raise self.err(f"{where}.ops", f"bad op {op!r}: {getattr(exc, 'reason', exc)}") from None
            if blk.keep != 1 or blk.bits != FLOAT_BITS:
                raise self.err(f"{where}.ops", f"op {op!r} must not carry keep or bits")
            want = ("mb", "skip") if family == "mbconv" else ("shuffle", "xception")
            if blk.kind not in want:
                raise self.err(f"{where}.ops", f"op {op!r} does not belong to family {family}")
        if not ops:
            raise self.err(f"{where}.ops", "empty list")
        return tuple(dict.fromkeys(ops))

    def _references(self, raw: dict[str, Any], space: SearchSpace) -> dict[str, Candidate]:
        refs: dict[str, Candidate] = {}
        for i, rd in enumerate(self.get(raw, "references", "top level", list, []), start=1):
            where = f"references[{i}]"
            pattern = self.get(rd, "name", where, str)
            skel = self.get(rd, "skeleton", where, str, DEFAULT_SKELETON)
            stages = self.get(rd, "stages", where, list)
            widths = self.num_list(rd, "widths", where, float)
            ress = self.num_list(rd, "resolutions", where, int)
            head = space.name if skel == DEFAULT_SKELETON else f"{space.name}.{skel}"
            body = "/".join(",".join(str(s).split()) for s in stages)
            for w in widths:
                for r in ress:
                    ref_name = pattern.format(width=_ref_width(w), resolution=r)
                    key = f"{head}:r{r}:w{format_number(w)}:{body}"
                    try:
                        cand = space.parse(key)
                    except CandidateError as exc:
                        raise self.err(where, f"reference {ref_name}: {exc}") from None
                    if ref_name in refs:
                        raise self.err(where, f"duplicate reference name {ref_name}")
                    refs[ref_name] = cand
        return refs


def _ref_width(w: float) -> str:
    s = format_number(w)
    return s if "." in s else f"{s}.0"


def _tokens_field(default: tuple[Any, ...] | None, which: str) -> list[int | float]:
    if not default:
        return []
    vals = []
    for op in default:
        b = Block.parse(op)
        v = b.kernel if which == "k" else b.expansion
        if v not in vals:
            vals.append(v)
    return vals
