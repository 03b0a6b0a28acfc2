from nas.models.builder import Network, build_model

__all__ = ["Network", "build_model"]
