"""Post-edit transforms: what an edit writes at a layer, reshaped after the objective solved it.

At each layer an edit wrote, once all its solves are done (float64, (d_out, d_in) orientation):

    D      this edit's change, the sum of its solves there
    W      the weight before this edit
    W0     the weight before the oldest edit still applied there (the original model)
    C      the raw change of the earlier applied edits there (their solves, before any transform)
    D' = transform(D, W, W0, C)          the change this edit should make instead

The editor writes D' − D as one more update (with no keys), so the Edit holds exactly what the
model carries and undoes, saves and re-applies bit-exactly like any other. Transforms compose
with any objective and strategy (Editor(..., transforms=["rect"])); given several, each sees the
previous one's D'.

  rect   (Gu et al. 2024, RECT): keep the fraction `keep` of D's entries with the largest
         relative change |D_ij| / |W_ij + 1e-8|, zero the rest. keep = 0.4 as in the MEMIT_rect
         reproductions (AlphaEdit's and ENCORE's code); the paper's own snippet keeps 0.2.
  prune  (Ma et al. 2024, PRUNE): with C + D = U Σ Vᵀ, every σ_i ≥ σ_max(W0) becomes
         ln σ_i − ln σ_max(W0) + σ_max(W0) ("log"; "linear": (σ_i + σ_max)/2), and the model
         carries W0 + U Σ' Vᵀ. The official code (mjy1111/PRUNE) applies it once to the total
         change after the last edit; here it is applied after every edit to the raw total so
         far, so the model is at each point what post-hoc PRUNE would make of it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from .registry import Registry


class TransformConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Transform(ABC):
    Config: ClassVar[type[TransformConfig]] = TransformConfig
    reference: ClassVar[str] = ""

    def __init__(self, **hparams):
        self.config = self.Config(**hparams)

    @abstractmethod
    def __call__(self, D: torch.Tensor, W: torch.Tensor, W0: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        """D' (d_out, d_in), all arguments float64 (d_out, d_in)."""


TRANSFORMS: Registry[type[Transform]] = Registry("transform")


class RectConfig(TransformConfig):
    keep: float = Field(0.4, gt=0, le=1)  # fraction of entries kept


@TRANSFORMS.register("rect")
class Rect(Transform):
    Config = RectConfig
    reference = "jianghoucheng/AlphaEdit: memit/memit_rect_main.py (k_percent 40); paper: JasonForJoy/Model-Editing-Hurt"

    def __call__(self, D, W, W0, C):
        rel = D.abs() / (W + 1e-8).abs()
        k = math.ceil(self.config.keep * rel.numel())  # entries kept
        threshold = rel.flatten().kthvalue(rel.numel() - k + 1).values
        return torch.where(rel >= threshold, D, torch.zeros_like(D))


class PruneConfig(TransformConfig):
    reduce: Literal["log", "linear"] = "log"


@TRANSFORMS.register("prune")
class Prune(Transform):
    Config = PruneConfig
    reference = "mjy1111/PRUNE: easyeditor/editors/bi_editor_loadw.py (read_weights, func_log)"

    def __call__(self, D, W, W0, C):
        U, S, Vh = torch.linalg.svd(C + D, full_matrices=False)
        top = float(torch.linalg.matrix_norm(W0, ord=2))  # σ_max(W0)
        big = S >= top
        if self.config.reduce == "log":
            S2 = torch.where(big, S.clamp_min(top).log() - math.log(top) + top, S)
        else:
            S2 = torch.where(big, (S + top) / 2, S)
        return W0 + (U * S2) @ Vh - W


def build(spec: str | dict) -> Transform:
    """A transform from its name, or {"name": …, hparam: value, …}."""
    if isinstance(spec, str):
        return TRANSFORMS.get(spec)()
    spec = dict(spec)
    name = spec.pop("name", None)
    if name is None:
        raise ValueError(f"a transform given as a dict needs a 'name' (registered: {', '.join(TRANSFORMS.names())}); got {spec}")
    return TRANSFORMS.get(name)(**spec)
