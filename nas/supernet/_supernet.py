"""A weight-sharing supernet: one set of weights per slot of a search space, from which every
candidate's network takes its own (Once-for-All, BigNAS, Single-Path One-Shot).

The candidate is an argument of the forward pass (``supernet(x, candidate)``), never a mode set
on modules. The forward pass runs the very network ``build_model`` builds for the candidate (a
template of it, cached per candidate and side) with its parameters and buffers taken from the
supernet's by slicing (``torch.func.functional_call``), so gradients reach the shared weights:

- a **slot** is a place in a skeleton (``SearchSpace.slots``: stem, stage 2 block 0, head ...);
  within a slot, operators of one **family** share weights (an inverted residual with or
  without squeeze-excite, with grouped 1x1 convs, a ShuffleNet unit, its Xception-style
  variant, a skip's 1x1 projection): kernel size, expansion, keep ratio and width choose a
  slice of the family's largest weights, and op choices of different families (SPOS choice
  blocks) have weights of their own;
- **channels** are the first ones (hidden channels are kept in importance order by
  ``sort_channels``, so the first are the most important); **kernels** are the centre crop
  of the largest kernel; **depth** skips a stage's last blocks (their slots are not used);
- **bits**: the sliced weights are fake-quantized at the candidate's bits (the same
  ``apply_fake_quant`` the standalone network gets); the activation ranges are shared per slot;
- **resolution**: by input size (the caller feeds the candidate's side).

``extract(candidate, side)`` returns exactly the standalone network ``build_model`` builds, with
the sliced weights copied in: what is scored, priced and shipped is one network.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from typing import Iterable

import torch
from torch import nn
from torch.func import functional_call

from nas.errors import SupernetError
from nas.models import Network, apply_fake_quant, build_model
from nas.space import Candidate, OpSpec, SearchSpace

__all__ = ["Supernet", "SupernetError", "SUPPORTED_SPACES", "SUPPORTED_FAMILIES", "check_supported", "family_of"]

# the built-in spaces, each checked by tests/test_supernet.py (forward == extract); a YAML space of
# one of these families is held the same way
SUPPORTED_SPACES = ("mobilenetv2", "mobilenetv3", "fbnet", "shufflenetv2", "efficientnet_lite")
SUPPORTED_FAMILIES = ("mbconv", "shufflenet")
_TEMPLATES = 64  # templates kept (an LRU): a sandwich step uses 4, scoring one per candidate
_QUANT_ORIGINAL = "parametrizations.weight.original"


def family_of(op: OpSpec) -> str:
    """Operators of one family in one slot share weights; their structure (which parameters
    they have) is the same, only shapes differ."""
    f = op.kind
    if op.kind == "mbconv":
        f += ("x" if op.expand else "") + (f"g{op.groups}" if op.groups > 1 else "") + ("se" if op.se else "")
    elif op.kind in ("shuffle", "shuffle_x"):
        f += "p" if op.stride > 1 else ""
    elif op.kind == "conv" and op.groups > 1:
        f += f"g{op.groups}"
    return f


def _storage_name(slot: str, op: OpSpec, inner: str) -> str:
    # nn.Module attribute names cannot hold '.' or '/'
    inner = inner.replace(_QUANT_ORIGINAL, "weight")
    return f"{slot}~{family_of(op)}~{inner}".replace("/", "__").replace(".", "_")


def _slices(have: torch.Size, want: torch.Size) -> tuple[slice, ...]:
    """First channels on every axis; the centre of a kernel's spatial axes."""
    if len(have) != len(want):
        raise SupernetError(f"weight of rank {len(want)} asked of a stored rank {len(have)}")
    out = []
    for axis, (h, w) in enumerate(zip(have, want)):
        if w > h:
            raise SupernetError(f"weight {tuple(want)} does not fit the stored {tuple(have)}")
        if len(have) == 4 and axis >= 2:
            start = (h - w) // 2
            out.append(slice(start, start + w))
        else:
            out.append(slice(0, w))
    return tuple(out)


def check_supported(space: SearchSpace) -> None:
    """SupernetError (one line) unless a supernet can hold ``space``'s candidates."""
    if getattr(space, "family", None) not in SUPPORTED_FAMILIES:
        raise SupernetError(f"space {space.name!r} ({getattr(space, 'family', '?')} family) has no supernet yet "
                            f"(supported: the {' and '.join(SUPPORTED_FAMILIES)} families, e.g. "
                            f"{', '.join(SUPPORTED_SPACES)}); use --proxy train")


class _Template:
    """A candidate's standalone network (built once, its own weights never used) and, for each
    of its parameters and buffers, the stored tensor and the slice of it that it is."""

    def __init__(self, net: Network, plan: list[tuple[str, OpSpec]], store: "Supernet"):
        self.net = net
        self.params: list[tuple[str, str, tuple[slice, ...]]] = []
        self.buffers: list[tuple[str, str, tuple[slice, ...]]] = []
        for kind, named in (("params", net.named_parameters()), ("buffers", net.named_buffers())):
            for name, t in named:
                _, index, inner = name.split(".", 2)  # layers.<i>.<path in the op>
                slot, op = plan[int(index)]
                sname = _storage_name(slot, op, inner)
                stored = store._stored(sname)
                getattr(self, kind).append((name, sname, _slices(stored.shape, t.shape)))


class Supernet(nn.Module):
    """The weights of every candidate of ``space`` for data of ``num_classes`` classes and
    ``in_channels`` channels. ``forward(x, candidate)``; ``extract(candidate, side)``."""

    def __init__(self, space: SearchSpace, num_classes: int, in_channels: int = 3,
                 _state: dict[str, torch.Tensor] | None = None, _params: frozenset[str] = frozenset()):
        super().__init__()
        check_supported(space)
        self.space = space
        self.num_classes = num_classes
        self.in_channels = in_channels
        self._templates: OrderedDict[tuple[str, int], _Template] = OrderedDict()
        if _state is not None:  # from saved weights: their names and shapes say what is held
            for sname, t in _state.items():
                if sname in _params:
                    self.register_parameter(sname, nn.Parameter(t))
                else:
                    self.register_buffer(sname, t)
            return
        shapes: dict[str, tuple[torch.Size, nn.Parameter | torch.Tensor, bool]] = {}
        for slot, op in sorted(space.all_slots(num_classes, in_channels), key=lambda so: (so[0], so[1].key)):
            for name, t, is_param in _op_tensors(op):
                sname = _storage_name(slot, op, name)
                have = shapes.get(sname)
                if have is None or any(w > h for w, h in zip(t.shape, have[0])):
                    big = t.shape if have is None else torch.Size(max(a, b) for a, b in zip(t.shape, have[0]))
                    shapes[sname] = (big, t, is_param)
        for sname, (shape, like, is_param) in sorted(shapes.items()):
            init = _init_like(sname, shape, like)
            if is_param:
                self.register_parameter(sname, nn.Parameter(init))
            else:
                self.register_buffer(sname, init)

    # ------------------------------------------------------------------ the forward pass
    def forward(self, x: torch.Tensor, candidate: Candidate) -> torch.Tensor:
        """The candidate's network on ``x`` (whose side is the candidate's input side), with
        the supernet's weights: gradients flow to them; in training mode batch-norm and
        activation-range statistics are updated in the supernet's buffers."""
        tpl = self._template(candidate, int(x.shape[-1]))
        tensors = {name: self._stored(sname)[sl] for name, sname, sl in tpl.params}
        tensors.update({name: self._stored(sname)[sl] for name, sname, sl in tpl.buffers})
        tpl.net.train(self.training)
        return functional_call(tpl.net, tensors, (x,), strict=True)

    def extract(self, candidate: Candidate, side: int | None = None) -> Network:
        """The standalone network of ``candidate`` at input ``side`` (default: its own
        resolution), exactly as ``build_model`` builds it (fake-quantized when the candidate
        is), with the supernet's weights and statistics copied in, on the supernet's device."""
        side = side or candidate.resolution
        tpl = self._template(candidate, side)
        net = build_model(candidate, self.num_classes, self.in_channels, resolution=side)
        if candidate.is_quantized:
            apply_fake_quant(net)
        state = {name: self._stored(sname)[sl].detach().clone() for name, sname, sl in tpl.params + tpl.buffers}
        net.load_state_dict(state, strict=True)
        return net.to(self._device())

    # ------------------------------------------------------------------ importance order
    @torch.no_grad()
    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Reorder the hidden channels of every inverted residual with an expansion conv by
        importance (L1 norm of the projection's weights on them, Once-for-All's criterion), so
        that slicing the first channels keeps the most important. The largest network's
        function is unchanged (a permutation); smaller ones inherit better channels. The
        ``optimizer``'s per-parameter state (momentum) is permuted alike. Grouped blocks keep
        their order (a permutation would mix groups)."""
        families: dict[str, dict[str, str]] = {}
        for sname, _ in list(self.named_parameters()) + list(self.named_buffers()):
            slot, fam, inner = sname.split("~")
            if fam.startswith("mbconvx") and "g" not in fam:
                families.setdefault(f"{slot}~{fam}", {})[inner] = sname
        for members in families.values():
            _sort_mbconv(self, members, optimizer)

    # ------------------------------------------------------------------ identity, files
    def digest(self) -> str:
        """SHA-256 (16 hex digits) of the weights and statistics: which supernet scored a trial."""
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save({"space": self.space.name, "num_classes": self.num_classes,
                    "in_channels": self.in_channels, "state": self.state_dict(),
                    "params": sorted(n for n, _ in self.named_parameters())}, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes, space: SearchSpace, map_location: str = "cpu") -> "Supernet":
        d = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
        if d.get("space") != space.name:
            raise SupernetError(f"these supernet weights are of space {d.get('space')!r}, not {space.name!r}")
        try:
            net = cls(space, int(d["num_classes"]), int(d["in_channels"]), _state=d["state"],
                      _params=frozenset(d["params"]))
        except (RuntimeError, KeyError) as exc:
            raise SupernetError(f"these supernet weights are damaged or of another hwnas version "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None
        return net

    # ------------------------------------------------------------------ internals
    def _stored(self, sname: str) -> torch.Tensor:
        t = self._parameters.get(sname)
        if t is None:
            t = self._buffers.get(sname)
        if t is None:
            raise SupernetError(f"the supernet holds no weights for {sname!r}")
        return t

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _template(self, candidate: Candidate, side: int) -> _Template:
        if candidate.space != self.space.name:
            raise SupernetError(f"{candidate.key}: not a candidate of space {self.space.name!r}")
        k = (candidate.key, side)
        tpl = self._templates.get(k)
        if tpl is None:
            plan = self.space.slots(candidate, side, self.num_classes, self.in_channels)
            with torch.device("meta"):
                net = build_model(candidate, self.num_classes, self.in_channels, resolution=side)
            if candidate.is_quantized:
                apply_fake_quant(net)
            tpl = self._templates[k] = _Template(net, plan, self)
            while len(self._templates) > _TEMPLATES:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(k)
        return tpl

    def __getstate__(self) -> dict:  # templates are rebuilt where the supernet is unpickled
        d = dict(self.__dict__)
        d["_templates"] = OrderedDict()
        return d


def _op_tensors(op: OpSpec) -> Iterable[tuple[str, torch.Tensor, bool]]:
    """The parameters and buffers of the op's module (float and fake-quantized), on meta."""
    from nas.models import build_op

    with torch.device("meta"):
        mod = build_op(op)
    if op.bits < 32:
        apply_fake_quant(mod)
    for name, p in mod.named_parameters():
        yield name, p, True
    for name, b in mod.named_buffers():
        yield name, b, False


def _init_like(sname: str, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """The builder's initialisation (``Network._init_weights``) at the stored shape."""
    inner = sname.split("~")[2]
    t = torch.empty(shape, dtype=like.dtype)
    if like.dtype == torch.bool:
        return t.fill_(False)
    if inner.endswith("running_var"):
        return t.fill_(1.0)
    if inner.endswith(("running_mean", "num_batches_tracked", "_lo", "_hi")):
        return t.zero_()
    if inner.endswith("bias"):
        return t.zero_()
    if len(shape) == 4:
        return nn.init.kaiming_normal_(t, mode="fan_out")
    if len(shape) == 2:  # linear
        return nn.init.normal_(t, 0, 0.01)
    return t.fill_(1.0)  # batch-norm weight


def _sort_mbconv(net: Supernet, members: dict[str, str], optimizer: torch.optim.Optimizer | None) -> None:
    """Permute the hidden channels of one inverted-residual family by importance: the output
    channels of the expansion conv, the depthwise conv, their batch norms and the SE's fc2,
    the input channels of the SE's fc1 and of the projection conv."""
    convs = sorted({int(k.split("_")[1]) for k in members if k.startswith("body_")})
    project = f"body_{convs[-1]}_0_weight"
    if project not in members:
        return
    order = net._stored(members[project]).abs().sum(dim=(0, 2, 3)).argsort(descending=True)
    for inner, sname in members.items():
        t = net._stored(sname)
        if t.ndim == 0 or inner.startswith(f"body_{convs[-1]}_"):
            axis = 1 if inner == project else None  # the projection's BN is over its outputs
        elif "_fc1_" in inner:
            axis = 1 if inner.endswith("weight") else None  # fc1's bias is over squeeze channels
        else:
            axis = 0 if t.shape[0] == len(order) else None
        if axis is None:
            continue
        tensors = [t]
        if optimizer is not None and isinstance(t, nn.Parameter):
            tensors += [v for v in optimizer.state.get(t, {}).values()
                        if isinstance(v, torch.Tensor) and v.shape == t.shape]
        for v in tensors:
            v.copy_(v.index_select(axis, order))
