"""Spread strategy (MEMIT): the residual is shared among layers l_1 < … < l_L.

Targets Z (d_out, n) live at the output of l_L. For j = 1 … L, with layers l_1 … l_{j-1}
already edited:

    K_j = keys at l_j                       (d_in, n)   recomputed under the current weights
    H   = hidden states at the output of l_L (d_out, n)  recomputed likewise
    R_j = (Z − H) · share(L − j + 1)        (d_out, n)  this layer's share; MEMIT: share(m) = 1/m
    W_j ← W_j + solve(l_j, K_j, R_j)

The last layer receives everything still missing, so an exact objective ends with H = Z when
later layers' keys do not react to the edit at l_L itself.
"""

from __future__ import annotations

import torch

from .base import STRATEGIES, LayerAccess, LayerUpdate, SolveFn, Strategy


@STRATEGIES.register("spread")
class Spread(Strategy):
    name = "spread"
    reference = "kmeng01/memit: memit/memit_main.py (resid / (len(layers) - i))"

    def share(self, remaining: int) -> float:
        """The fraction of what is still missing that the current layer takes, with `remaining`
        layers left including it."""
        return 1.0 / remaining

    def run(self, access: LayerAccess, layers: list[int], Z: torch.Tensor, solve: SolveFn) -> list[LayerUpdate]:
        updates = []
        for j, layer in enumerate(layers):
            K = access.keys(layer)  # (d_in, n)
            H = access.outputs(layers[-1])  # (d_out, n)
            R = (Z - H) * self.share(len(layers) - j)  # (d_out, n)
            W = access.weight(layer)  # (d_out, d_in)
            delta = solve(layer, K, R)
            access.add(layer, delta)
            updates.append(LayerUpdate(layer, K, R, W.to(R.dtype) @ K + R, delta))
        return updates
