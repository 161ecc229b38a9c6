"""Edit-distribution strategies. Importing this package registers every strategy."""

from . import single, spread  # noqa: F401  (registration)
from .base import STRATEGIES, LayerAccess, LayerUpdate, SolveFn, Strategy

__all__ = ["STRATEGIES", "LayerAccess", "LayerUpdate", "SolveFn", "Strategy"]
