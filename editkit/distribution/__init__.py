"""Edit-distribution strategies. Importing this package registers every strategy."""

from . import pmet, single, spread  # noqa: F401  (registration)
from .base import STRATEGIES, LayerAccess, LayerUpdate, SolveFn, Strategy

__all__ = ["STRATEGIES", "LayerAccess", "LayerUpdate", "SolveFn", "Strategy"]
