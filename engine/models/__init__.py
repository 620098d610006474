"""Model backends behind one factory (see :func:`engine.models.factory.load_model`)."""
from engine.models.base import AudioTextModel, l2_normalize
from engine.models.factory import DEFAULT_MODEL, load_model

__all__ = ["AudioTextModel", "DEFAULT_MODEL", "l2_normalize", "load_model"]
