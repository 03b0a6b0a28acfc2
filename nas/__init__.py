"""hwnas: hardware-aware neural architecture search.

Public API (stable): ``load_space``, ``space_names``, ``Candidate``, ``OpSpec``,
``build_model``, ``export_onnx``, ``count``, ``load_dataset``, ``evaluate_proxy``; device
profiles in ``nas.latency`` (``load_device``).
"""

from importlib.metadata import PackageNotFoundError, version

from nas.data import Dataset, load_dataset
from nas.export import export_onnx
from nas.models import build_model, count
from nas.space import Block, Candidate, OpSpec, SearchSpace, load_space, parse_candidate, space_names
from nas.train import ProxyResult, evaluate_proxy

try:
    __version__ = version("hwnas")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

__all__ = ["Block", "Candidate", "Dataset", "OpSpec", "ProxyResult", "SearchSpace", "build_model",
           "count", "evaluate_proxy", "export_onnx", "load_dataset", "load_space", "parse_candidate", "space_names",
           "__version__"]
