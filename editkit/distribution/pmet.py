"""PMET-style spread (Li et al. 2024, PMET): the residual shared among layers l_1 < … < l_L with
a square-root share instead of MEMIT's even one.

    R_j = (Z − H) / √(L − j + 1)        (d_out, n)   j = 1 … L, H recomputed after each layer

The first layers take more than MEMIT's 1/(L − j + 1) and the last takes whatever is still
missing (share 1), as in xpq-tech/PMET's `resid / np.sqrt(len(layers) - i)`. Only this rule is
PMET's here: PMET also optimises attention and MLP targets jointly, which editkit's targets do not.
"""

from __future__ import annotations

import math

from .base import STRATEGIES
from .spread import Spread


@STRATEGIES.register("pmet")
class SqrtSpread(Spread):
    name = "pmet"
    reference = "xpq-tech/PMET: the residual divided by sqrt(len(layers) - i)"

    def share(self, remaining: int) -> float:
        return 1.0 / math.sqrt(remaining)
