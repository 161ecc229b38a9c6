"""One edit, measured: before/after predictions of its requests (`editkit edit`), and the metrics
of a data set slice with and without a saved edit (`editkit eval`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..edit import Edit
from . import edit_metrics, evaluate
from .counterfact import probabilities
from .generation import generate


def edit_and_compare(model, tok, editor, requests, show_tokens: int = 3):
    """Apply the edit; return (edit, rows) with each request's greedy continuation and
    P(new)/P(true) before and after."""
    prompts = [r.text for r in requests]
    before_txt = generate(model, tok, prompts, top_k=1, max_new_tokens=show_tokens)
    before = probabilities(model, tok, requests)
    torch.manual_seed(editor.config.seed)
    edit = editor.edit(model, tok, requests)
    after_txt = generate(model, tok, prompts, top_k=1, max_new_tokens=show_tokens)
    after = probabilities(model, tok, requests)
    rows = []
    for i, r in enumerate(requests):
        rows.append({
            "prompt": r.text, "target_new": r.target_new, "target_true": r.target_true,
            "before": before_txt[i], "after": after_txt[i],
            "p_new_before": float(before[i, 0]), "p_new_after": float(after[i, 0]),
            "p_true_before": float(before[i, 1]), "p_true_after": float(after[i, 1]),
        })
    return edit, rows


def evaluate_slice(model, tok, data, edit=None, generation: bool = False, batch_size: int = 64, seed: int = 0) -> dict:
    """{"unedited": summary, "edited": summary (with `edit`), "edit": edit metrics, "rows": …} on
    `data` (an `evaluation.load(...)` slice). With `edit` (an Edit, or a folder of a saved one) it
    is applied, measured and undone."""
    requests = data.requests()
    gen = None
    if generation:
        from .generation import ReferenceTexts, wikipedia_tfidf

        refs = ReferenceTexts()
        gen = {"prompts": data.generation_prompts(), "references": [" ".join(refs.passages(r.target_new)) for r in requests],
               "tfidf": wikipedia_tfidf(), "seed": seed}
    torch.manual_seed(seed)
    base, base_rows = evaluate(model, tok, data.kind, requests, batch_size=batch_size, generation=gen)
    out = {"dataset": data.describe(), "unedited": base, "rows": {"unedited": base_rows}}
    if edit is not None:
        edit = Edit.load(edit) if isinstance(edit, (str, Path)) else edit
        edit.apply(model)
        try:
            torch.manual_seed(seed)
            s, rows = evaluate(model, tok, data.kind, requests, baseline=base_rows, batch_size=batch_size, generation=gen)
        finally:
            edit.undo()
        out.update(edited=s, edit=edit_metrics(edit))
        out["rows"]["edited"] = rows
    return out
