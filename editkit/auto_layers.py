"""`layers="auto"`: the edit layers chosen from a causal trace, by MEMIT's rule.

    e_l = mean over known facts of the MLP indirect effect at the last subject token, layer l
          (the trace restores the MLP outputs of a window of layers around l; editkit.trace)
    layers = the n consecutive layers l … l+n−1 with the largest Σ e

MEMIT picked its ranges this way (GPT-2 XL 13–17, GPT-J 3–8: where the MLP effect at the last
subject token peaks). n defaults to the length of the model's default range. The facts are the
first CounterFact cases of the data folder (or those given) that the model knows, i.e. whose
true object is its top next token. The choice, the per-layer effects and the facts traced are
returned, and the editor keeps them in every edit's info["auto_layers"].
"""

from __future__ import annotations

import logging

import torch

from .architectures import num_layers

log = logging.getLogger(__name__)


def best_window(effects: torch.Tensor, n: int) -> list[int]:
    """The n consecutive layers with the largest summed effect (the lowest such window on ties)."""
    L = effects.shape[0]
    if not 1 <= n <= L:
        raise ValueError(f"cannot choose {n} consecutive layers of a model with {L}")
    e = torch.nan_to_num(effects.double(), nan=0.0)
    sums = torch.stack([e[s : s + n].sum() for s in range(L - n + 1)])
    start = int(torch.argmax(sums))  # the first maximum
    return list(range(start, start + n))


def choose_layers(model, tok, n: int, facts: list | None = None, n_facts: int = 50, samples: int = 5, window: int | None = None,
                  progress: bool = False) -> dict:
    """{"layers", "effects" (per layer), "window", "facts"}; see the module docstring."""
    from .trace import LAST_SUBJECT, default_window, trace_facts

    if facts is None:  # the cases the model's folder ships (editkit-teach), else CounterFact's train split
        from .evaluation.datasets import default_dataset, load

        source = default_dataset(getattr(getattr(model, "config", None), "_name_or_path", "") or "", "train", "counterfact:train")
        facts = load(source).records[: max(4 * n_facts, 200)]
    L = num_layers(model)
    w = default_window(L) if window is None else window
    try:
        summary = trace_facts(model, tok, facts, kinds=["mlp"], samples=samples, window=w, progress=progress, only_known=True, max_known=n_facts)
    except ValueError as e:
        raise ValueError(f"layers='auto': {e} Give layers explicitly, or other facts.") from None
    traced = summary.facts
    effects = summary.effects["mlp"][LAST_SUBJECT]
    layers = best_window(effects, n)
    log.info("layers='auto': %s from the MLP effect at the last subject token %s over %d facts", layers, [round(float(x), 4) for x in effects], len(traced))
    return {"layers": layers, "effects": [float(x) for x in effects], "window": w, "facts": len(summary.facts)}
