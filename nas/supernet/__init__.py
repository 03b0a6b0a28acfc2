"""Weight sharing: a supernet per search space holds the weights of every candidate
(``Supernet``); candidates are scored from the weights they inherit, without training."""

from nas.supernet._supernet import SUPPORTED_SPACES, Supernet, SupernetError, family_of

__all__ = ["SUPPORTED_SPACES", "Supernet", "SupernetError", "family_of"]
