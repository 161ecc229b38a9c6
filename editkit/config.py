"""Every setting of an edit, as one validated pydantic model saved beside every result.

Three groups, kept apart: the algorithm (objective, its hparams, strategy, layers), how target
values are found (TargetConfig), and where key statistics come from (StatsConfig).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .distribution import STRATEGIES
from .objectives import OBJECTIVES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TargetConfig(_Strict):
    """Optimisation of δ, the target residual-stream offset at the last edited layer."""

    steps: int = Field(20, ge=1)  # Adam steps (MEMIT's v_num_grad_steps)
    lr: float = Field(0.5, gt=0)  # MEMIT's v_lr
    clamp_factor: float = Field(4.0, gt=0)  # ‖δ‖ ≤ clamp_factor · ‖h‖
    kl_factor: float = Field(0.0625, ge=0)  # weight of KL(edited ‖ unedited) on "{subject} is a"
    weight_decay: float = Field(0.5, ge=0)  # weight of ‖δ‖² / ‖h‖²
    early_stop: float = Field(5e-2, ge=0)  # stop once the NLL term falls below this
    serial: bool = False  # optimise requests one at a time (reference behaviour) instead of together
    path: Literal["fast", "full"] = "fast"  # "fast": blocks ≤ L once, then only blocks > L where δ reaches; "full": whole model every step
    context: Literal["generated", "fixed", "none"] = "generated"  # prefixes for keys and targets
    n_context: int = Field(5, ge=0)  # number of prefixes (besides the empty one)
    context_len: int = Field(10, ge=1)  # tokens per generated prefix
    kl_prompt: str = "{} is a"
    fact_token: Literal["subject_last", "subject_first", "last"] = "subject_last"  # where keys are read and δ added


class StatsConfig(_Strict):
    """Key second-moment statistics C0 = E[k kᵀ] per layer."""

    corpus: str = "wikipedia"  # a local folder/file of text, "wikipedia" (../shared/data), or a `datasets` name
    n_tokens: int = Field(100_000, ge=1)
    max_len: int = Field(128, ge=2)
    batch_size: int = Field(8, ge=1)
    dtype: Literal["float32", "float64"] = "float32"  # dtype of the forward pass; accumulation is float64
    ridge: float = Field(1e-6, ge=0)  # C0 + ridge·mean(diag C0)·I when solving: dead MLP units leave C0 singular
    cache_dir: Path | None = None  # default: $EDITKIT_CACHE or ~/.cache/editkit


class EditorConfig(_Strict):
    objective: str = "emmet"
    distribute: bool = False
    layers: list[int] | None = None  # None: the model's default layers
    hparams: dict = Field(default_factory=dict)  # the objective's hyperparameters (alpha, mom2_weight, …)
    target: TargetConfig = Field(default_factory=TargetConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    keep_edited_keys: bool = True  # earlier edits' keys join the preservation term (K_p)
    seed: int = 0
    progress: bool = True

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, v: str) -> str:
        OBJECTIVES.get(v)
        return v

    @property
    def strategy(self) -> str:
        return "spread" if self.distribute else "single"

    @model_validator(mode="after")
    def _valid_hparams(self) -> "EditorConfig":
        STRATEGIES.get(self.strategy)
        entry = OBJECTIVES.get(self.objective)
        unknown = set(self.hparams) - set(entry.solver.Config.model_fields)
        if unknown:
            raise ValueError(
                f"objective {self.objective!r} has no setting(s) {sorted(unknown)}; its hyperparameters "
                f"are {sorted(entry.solver.Config.model_fields)}, and the editor's are "
                f"{sorted(set(EditorConfig.model_fields) | set(TargetConfig.model_fields) | set(StatsConfig.model_fields))}"
            )
        entry.build(**self.hparams)  # invalid values fail here
        if self.layers is not None and (not self.layers or sorted(set(self.layers)) != self.layers):
            raise ValueError(f"layers {self.layers} must be a non-empty, strictly increasing list")
        return self


_GROUPS = {"target": TargetConfig, "stats": StatsConfig}


def build_config(**kwargs) -> EditorConfig:
    """EditorConfig from flat keyword arguments: each one goes to the group that declares it
    (Editor(objective="memit", mom2_weight=1e4, steps=25, n_tokens=10**6))."""
    top = {k: kwargs.pop(k) for k in list(kwargs) if k in EditorConfig.model_fields}
    for group, cls in _GROUPS.items():
        sub = dict(top.get(group) or {})
        if isinstance(sub, BaseModel):
            sub = sub.model_dump()
        sub.update({k: kwargs.pop(k) for k in list(kwargs) if k in cls.model_fields})
        top[group] = sub
    hp = dict(top.get("hparams") or {})
    hp.update(kwargs)  # what is left belongs to the objective; its Config rejects unknown keys
    top["hparams"] = hp
    return EditorConfig(**top)
