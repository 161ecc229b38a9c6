"""Objective solvers: (K, R, C0) → ΔW. Importing this package registers every solver."""

from . import encore, equality, least_squares, null_space  # noqa: F401  (registration)
from .base import OBJECTIVES, Objective, ObjectiveConfig, ObjectiveEntry, Preservation, preservation_cost, register

__all__ = ["OBJECTIVES", "Objective", "ObjectiveConfig", "ObjectiveEntry", "Preservation", "preservation_cost", "register"]
