"""Edit-distribution strategies: where the residual goes.

A strategy sees the model only through `LayerAccess` (keys at a layer, hidden states at a layer's
output, read a layer's W, add ΔW to it) and the objective only through `solve(layer, K, R) → ΔW`.
It never knows which objective or which model it drives, so every objective × strategy pair
works, and a strategy can be unit-tested on a fake model whose exact answer is known.

Shapes: Z (d_out, n) target hidden states at the output of the last edited layer;
K (d_in, n) keys; R (d_out, n) residual handed to the objective; ΔW (d_out, d_in).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..registry import Registry


class LayerAccess(Protocol):
    def keys(self, layer: int) -> torch.Tensor:
        """(d_in, n) edit keys at `layer` under the current weights."""

    def outputs(self, layer: int) -> torch.Tensor:
        """(d_out, n) hidden states at the output of `layer` under the current weights."""

    def weight(self, layer: int) -> torch.Tensor:
        """(d_out, d_in) the current W of `layer`."""

    def add(self, layer: int, delta: torch.Tensor) -> None:
        """W ← W + ΔW at `layer`."""


SolveFn = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]  # (layer, K, R) → ΔW


@dataclass
class LayerUpdate:
    """One layer's share of an edit: the solver's inputs and its output (float64)."""

    layer: int
    keys: torch.Tensor  # K  (d_in, n), the averaged keys (with constraint_key="plain" the constraint holds at the plain prompts' keys instead)
    residual: torch.Tensor  # R  (d_out, n), what the objective was asked to add at K
    values: torch.Tensor  # V = W K + R  (d_out, n), W as it was when this layer was solved
    delta: torch.Tensor  # ΔW (d_out, d_in)


class Strategy(ABC):
    name = ""
    reference = ""  # the paper/code whose rule this is

    def writes(self, layers: list[int]) -> list[int]:
        """The layers whose W this strategy changes, given the configured `layers`
        (their last one holds the targets Z). Default: all of them."""
        return list(layers)

    @abstractmethod
    def run(self, access: LayerAccess, layers: list[int], Z: torch.Tensor, solve: SolveFn) -> list[LayerUpdate]:
        """Write the edit into `access`, layer by layer; return what each layer received."""


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "strategies")
