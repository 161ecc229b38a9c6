"""Evaluation: CounterFact and zsRE metrics (as ROME/MEMIT define them), generation metrics, the
numbers an Edit carries, and data loaders.

    from editkit.evaluation import load, evaluate, edit_metrics
    data = load("counterfact:val", n=64)
    summary, rows = evaluate(model, tok, data.kind, data.requests())
"""

from __future__ import annotations

from collections import defaultdict

import torch

from .counterfact import evaluate_counterfact
from .datasets import Dataset, load, load_counterfact, load_knowns, load_zsre
from .zsre import evaluate_zsre

__all__ = ["Dataset", "edit_metrics", "evaluate", "evaluate_counterfact", "evaluate_zsre", "load", "load_counterfact", "load_knowns", "load_zsre"]


def evaluate(
    model, tok, kind: str, requests, baseline: list[dict] | None = None, batch_size: int = 64, generation: dict | None = None
) -> tuple[dict, list[dict]]:
    """(summary, per-request rows) for a CounterFact or zsRE slice. `baseline` = the unedited
    model's rows (zsRE specificity needs them); `generation` = keyword arguments of
    generation.generation_metrics (CounterFact only)."""
    if kind == "counterfact":
        return evaluate_counterfact(model, tok, requests, batch_size, generation)
    if kind == "zsre":
        if generation is not None:
            raise ValueError("generation metrics are defined for CounterFact only")
        return evaluate_zsre(model, tok, requests, baseline, batch_size)
    raise ValueError(f"no metrics for data set kind {kind!r}; use 'counterfact' or 'zsre'")


def edit_metrics(edit) -> dict:
    """What the Edit itself says, per layer and overall:

        delta_norm[l]            ‖ΔW_l‖_F of the total change at layer l (all updates summed)
        memorization_error       mean over updates and requests of ‖ΔW k − r‖ / ‖v‖ when written
                                 (= ‖W'k − v‖/‖v‖ for the weights right after that update)
        final_memorization_error the same with the layer's final weights (later updates at the
                                 layer included): what sequential editing (ROME) leaves of each edit
        preservation             mean of √tr(ΔW C0 ΔWᵀ) over updates (the preservation cost)
        target_loss              mean final loss of the target optimisation (high: the target
                                 value itself does not make the new object likely)
    """
    per_layer: dict[int, torch.Tensor] = {}
    for u in edit.updates:
        per_layer[u.layer] = per_layer[u.layer] + u.delta if u.layer in per_layer else u.delta.clone()
    errs = [r["error"] for r in edit.constraint_errors()]
    final = []
    later: dict[int, torch.Tensor] = {}
    for u in reversed(edit.updates):  # Σ of this and later deltas at the same layer
        later[u.layer] = later[u.layer] + u.delta if u.layer in later else u.delta.clone()
        e = (later[u.layer] @ u.keys - u.residual).norm(dim=0) / u.values.norm(dim=0)
        final += e.tolist()
    pres = edit.info.get("preservation") or []
    losses = edit.info.get("target_losses") or []
    by_layer = defaultdict(float)
    for l, d in per_layer.items():
        by_layer[str(l)] = float(d.norm())
    return {
        "delta_norm": dict(by_layer),
        "delta_norm_total": float(sum(v**2 for v in by_layer.values()) ** 0.5),
        "memorization_error": sum(errs) / len(errs) if errs else float("nan"),
        "memorization_error_max": max(errs) if errs else float("nan"),
        "final_memorization_error": sum(final) / len(final) if final else float("nan"),
        "preservation": sum(pres) / len(pres) if pres else float("nan"),
        "target_loss": sum(losses) / len(losses) if losses else float("nan"),
        "n_updates": len(edit.updates),
    }
