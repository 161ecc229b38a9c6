"""Every setting of an edit, as one validated pydantic model saved beside every result.

Three groups, kept apart: the algorithm (objective, its hparams, strategy, layers), how target
values are found (TargetConfig), and where key statistics come from (StatsConfig).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .context import as_groups
from .distribution import STRATEGIES
from .objectives import OBJECTIVES
from .transforms import build as build_transform


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # NaN/inf: "Input should be a finite number"


class TargetConfig(_Strict):
    """Optimisation of δ, the target offset of the residual stream at the last edited layer.

    The defaults are MEMIT's `compute_z` (kmeng01/memit; EMMET and AlphaEdit reuse it); an
    objective's registration overrides some of them with its own reference's (ROME's
    `compute_v`: `delta_module="mlp"`, ROME's context, clamp 4), see editkit/objectives and
    benchmarks/faithfulness/README.md. Explicit keyword arguments override both."""

    steps: int = Field(20, ge=1)  # Adam steps (v_num_grad_steps); at most steps − 1 updates
    lr: float = Field(0.5, gt=0)  # v_lr
    clamp_factor: float = Field(0.75, gt=0)  # ‖δ‖ ≤ clamp_factor · ‖h‖ (clamp_norm_factor)
    kl_factor: float = Field(0.0625, ge=0)  # weight of KL(edited ‖ unedited) at the fact token of `kl_prompt`
    weight_decay: float = Field(0.5, ge=0)  # weight of ‖δ‖ / ‖h‖² (v_weight_decay; the norm, not its square)
    early_stop: float = Field(5e-2, ge=0)  # stop once the whole loss falls below this
    mpes_hits: int = Field(0, ge=0)  # MPES (ENCORE): stop a request once target_new was top-1 everywhere at this many checks (its |prob_cutoff|); 0: off
    serial: bool = False  # optimise requests one at a time (reference behaviour) instead of together
    path: Literal["fast", "full"] = "fast"  # "fast": blocks ≤ L once, then only blocks > L where δ reaches; "full": whole model every step
    delta_module: Literal["block", "mlp"] = "block"  # h: the output δ is measured against (MEMIT: block L, ROME: its MLP)
    context: Literal["memit", "rome", "fixed", "none"] = "memit"  # template groups for keys and targets (editkit.context)
    n_context: int = Field(5, ge=0)  # memit/fixed: number of prefixes (besides the plain prompt)
    context_len: int = Field(10, ge=1)  # memit: tokens per generated prefix, its opening word included
    templates: list[list[str]] | None = None  # explicit template groups (e.g. the same ones another code base used)
    kl_prompt: str = "{} is a"
    fact_token: Literal["subject_last", "subject_first", "last"] = "subject_last"  # where keys are read, δ added and KL read

    @field_validator("context", mode="before")
    @classmethod
    def _old_context_name(cls, v):
        return "memit" if v == "generated" else v  # the name before template groups existed

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, v):
        if v is not None:
            as_groups(v)
        return v


class StatsConfig(_Strict):
    """Key second-moment statistics C0 = E[k kᵀ] per layer.

    Two recipes (`recipe`):
      "editkit"   n_tokens tokens in chunks of ≤ max_len (128) tokens, documents in order.
      "original"  the papers' code (rome/layer_stats.py, used by MEMIT, EMMET, AlphaEdit):
                  n_docs = 100,000 documents (mom2_n_samples), each truncated to the model's
                  context (max_len = None), float32 forward. The originals draw the documents at
                  random (seed 1) from a hub Wikipedia dump and accumulate in float32; editkit
                  takes them in the corpus's order and accumulates in float64.
    A recipe fills only what is not given explicitly."""

    recipe: Literal["editkit", "original"] = "editkit"
    # "wikipedia" (the data folder's), a local folder/file, a registered or hub corpus (editkit.corpora),
    # or "npz:<dir>" (statistics in rome's layout, editkit.interop)
    corpus: str = "wikipedia"
    n_tokens: int = Field(100_000, ge=1)  # tokens to collect (when n_docs is None)
    n_docs: int | None = Field(None, ge=1)  # documents to collect instead, one chunk each (the originals' mom2_n_samples)
    max_len: int | None = Field(128, ge=2)  # tokens per chunk; None: the model's context length
    batch_size: int = Field(8, ge=1)
    dtype: Literal["float32", "float64"] = "float32"  # dtype of the forward pass; accumulation is float64
    ridge: float = Field(0.0, ge=0)  # C0 + ridge·mean(diag C0)·I when solving (no reference has one; dead MLP units leave C0 singular)
    cache_dir: Path | None = None  # default: $EDITKIT_CACHE or ~/.cache/editkit

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data):
        if isinstance(data, dict) and data.get("recipe") == "original":
            data = {**STATS_RECIPES["original"], **data}
        return data


STATS_RECIPES = {"original": {"n_docs": 100_000, "max_len": None, "dtype": "float32"}}


class EditorConfig(_Strict):
    objective: str = "emmet"
    strategy: str = "single"  # a registered edit-distribution strategy (editkit.distribution): "single", "spread", "pmet", …
    layers: list[int] | Literal["auto"] | None = None  # None: the model's default layers; "auto": from a causal trace (editkit.auto_layers)
    auto_layers: int | None = Field(None, ge=1)  # layers="auto": how many consecutive layers (default: as many as the model's default range)
    hparams: dict = Field(default_factory=dict)  # the objective's hyperparameters (alpha, mom2_weight, …)
    target: TargetConfig = Field(default_factory=TargetConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    # post-edit transforms of ΔW by name ("rect", "prune", or {"name": "rect", "keep": 0.2}); editkit.transforms
    transforms: list[str | dict] = Field(default_factory=list)
    keep_edited_keys: bool = False  # earlier edits' keys join the preservation term K_p (AlphaEdit's cache_c; MEMIT, ROME, EMMET keep C0 only)
    # equality objectives: the key the constraint ΔW k = r holds at; "plain": the plain prompt's
    # (ROME's compute_v), the direction C⁻¹k̄ still from the averaged key
    constraint_key: Literal["average", "plain"] = "average"
    seed: int = 0
    progress: bool = True

    @model_validator(mode="before")
    @classmethod
    def _distribute_is_an_alias(cls, data):
        """distribute=True/False is the older spelling of strategy="spread"/"single"."""
        if not isinstance(data, dict) or "distribute" not in data:
            return data
        data = dict(data)
        d = data.pop("distribute")
        if d is None:
            return data
        if not isinstance(d, bool):
            raise ValueError(
                f"distribute={d!r}: distribute is a switch, True (the 'spread' strategy, MEMIT's) or False ('single'); "
                f"to choose a strategy by name write strategy={d!r} (registered: {', '.join(STRATEGIES.names())})"
            )
        alias = "spread" if d else "single"
        if data.get("strategy") not in (None, alias):
            raise ValueError(f"distribute={d} means strategy={alias!r}, but strategy={data['strategy']!r} was given: give one of them")
        data["strategy"] = alias
        return data

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        STRATEGIES.get(v)
        return v

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, v: list) -> list:
        for t in v:
            build_transform(t)  # unknown names and invalid settings fail here
        return v

    @property
    def distribute(self) -> bool:
        """Whether the strategy writes more than one layer (the older switch; "single" → False)."""
        return self.strategy != "single"

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, v: str) -> str:
        OBJECTIVES.get(v)
        return v

    @model_validator(mode="after")
    def _valid_hparams(self) -> "EditorConfig":
        entry = OBJECTIVES.get(self.objective)
        unknown = set(self.hparams) - set(entry.solver.Config.model_fields)
        if unknown:
            raise ValueError(
                f"objective {self.objective!r} has no setting(s) {sorted(unknown)}; its hyperparameters "
                f"are {sorted(entry.solver.Config.model_fields)}, and the editor's are "
                f"{sorted(set(EditorConfig.model_fields) | set(TargetConfig.model_fields) | set(StatsConfig.model_fields))}"
            )
        entry.build(**self.hparams)  # invalid values fail here
        if self.constraint_key == "plain" and not entry.solver.takes_constraint_keys:
            raise ValueError(
                f"constraint_key='plain' needs an equality objective (rome, emmet); {self.objective!r} "
                "solves with the averaged keys only: drop constraint_key or pick another objective"
            )
        if isinstance(self.layers, list) and (not self.layers or sorted(set(self.layers)) != self.layers):
            raise ValueError(f"layers {self.layers} must be a non-empty, strictly increasing list")
        return self


_GROUPS = {"target": TargetConfig, "stats": StatsConfig}


def build_config(**kwargs) -> EditorConfig:
    """EditorConfig from flat keyword arguments: each one goes to the group that declares it
    (Editor(objective="memit", mom2_weight=1e4, steps=25, n_tokens=10**6)). Settings not given
    take the objective's reference conventions (its registration's `conventions`), then the
    config classes' defaults."""
    top = {k: kwargs.pop(k) for k in list(kwargs) if k in EditorConfig.model_fields or k == "distribute"}
    groups = {}
    for group, cls in _GROUPS.items():
        sub = top.get(group) or {}
        sub = sub.model_dump(exclude_unset=True) if isinstance(sub, BaseModel) else dict(sub)
        sub.update({k: kwargs.pop(k) for k in list(kwargs) if k in cls.model_fields})
        groups[group] = sub
    entry = OBJECTIVES.get(top.get("objective", EditorConfig.model_fields["objective"].default))
    for k, v in entry.conventions.items():  # the reference's choice, where the caller made none
        where = next((g for g, cls in _GROUPS.items() if k in cls.model_fields), None)
        if where is not None:
            groups[where].setdefault(k, v)
        elif k in EditorConfig.model_fields:
            top.setdefault(k, v)
        else:
            raise ValueError(f"objective convention {k!r} names no setting")  # a registration bug
    top.update(groups)
    hp = dict(top.get("hparams") or {})
    hp.update(kwargs)  # what is left belongs to the objective; its Config rejects unknown keys
    top["hparams"] = hp
    return EditorConfig(**top)
