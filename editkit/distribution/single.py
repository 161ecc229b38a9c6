"""Single strategy (ROME, EMMET): the whole residual is written at one layer.

    K = keys at l,  H = hidden states at the output of l,  R = Z − H,  W_l ← W_l + solve(l, K, R)

Given several layers, it edits the last one (where the targets Z live), so that a sweep can
share one `layers` setting between single and spread.
"""

from __future__ import annotations

import torch

from .base import STRATEGIES, LayerAccess, LayerUpdate, SolveFn
from .spread import Spread


@STRATEGIES.register("single")
class Single(Spread):
    name = "single"
    reference = "kmeng01/rome (one layer); EMMET's single-layer runs"

    def writes(self, layers: list[int]) -> list[int]:
        return list(layers[-1:])

    def run(self, access: LayerAccess, layers: list[int], Z: torch.Tensor, solve: SolveFn) -> list[LayerUpdate]:
        return super().run(access, layers[-1:], Z, solve)
