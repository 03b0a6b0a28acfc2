"""Weight sharing: a supernet per search space holds the weights of every candidate
(``Supernet``), trained once (``train_supernet``: sandwich rule, in-place distillation);
candidates are scored from the weights they inherit, without training (``score_candidate``).
A run keeps its supernet in ``<run>/supernet/`` (``save_supernet``, ``load_supernet``)."""

from nas.supernet._files import SUPERNET_DIR, load_supernet, read_training, save_supernet, supernet_dir
from nas.supernet._ray import train_on_ray
from nas.supernet._supernet import (
    SUPPORTED_FAMILIES,
    SUPPORTED_SPACES,
    Supernet,
    SupernetError,
    check_supported,
    family_of,
)
from nas.supernet._train import (
    CHECKPOINT_VERSION,
    SupernetBudget,
    SupernetTraining,
    sandwich_ends,
    score_candidate,
    train_supernet,
)

__all__ = [
    "CHECKPOINT_VERSION",
    "SUPERNET_DIR",
    "SUPPORTED_FAMILIES",
    "SUPPORTED_SPACES",
    "Supernet",
    "SupernetBudget",
    "SupernetError",
    "SupernetTraining",
    "check_supported",
    "family_of",
    "load_supernet",
    "read_training",
    "sandwich_ends",
    "save_supernet",
    "score_candidate",
    "supernet_dir",
    "train_on_ray",
    "train_supernet",
]
