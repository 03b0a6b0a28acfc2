"""hwnas: hardware-aware neural architecture search.

Public API (stable): ``load_space``, ``space_names``, ``Candidate``, ``OpSpec``,
``build_model``, ``export_onnx``, ``count``.
"""

from importlib.metadata import PackageNotFoundError, version

from nas.candidate import Block, Candidate, OpSpec
from nas.counting import count
from nas.export import export_onnx
from nas.models import build_model
from nas.spaces import SearchSpace, load_space, space_names

try:
    __version__ = version("hwnas")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

__all__ = ["Block", "Candidate", "OpSpec", "SearchSpace", "build_model", "count",
           "export_onnx", "load_space", "space_names", "__version__"]
