"""What a network is: ``Candidate`` (its genes and key), ``OpSpec`` (one operator) and its
``Layer``s (the one anatomy of an op), ``SearchSpace`` (loaded from YAML) and what follows
from the op list alone (memory)."""

from nas.space._candidate import Block, Candidate, format_number, make_divisible, pruned_channels
from nas.space._files import load_space, parse_candidate, space_names
from nas.space._layers import LAYER_KINDS, Layer
from nas.space._memory import activation_bytes, float_bytes, footprint, memory_bytes, peak_activation_bytes
from nas.space._opspec import FLOAT_BITS, OpSpec
from nas.space._space import PROXY_MIN_FEATURE, SearchSpace

__all__ = [
    "footprint",
    "Block",
    "Candidate",
    "FLOAT_BITS",
    "LAYER_KINDS",
    "Layer",
    "OpSpec",
    "PROXY_MIN_FEATURE",
    "SearchSpace",
    "activation_bytes",
    "float_bytes",
    "format_number",
    "load_space",
    "make_divisible",
    "memory_bytes",
    "parse_candidate",
    "peak_activation_bytes",
    "pruned_channels",
    "space_names",
]
