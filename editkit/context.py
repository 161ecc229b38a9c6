"""Context templates: short prefixes put before a prompt so keys and targets generalise.

A template is "<prefix>{}": the request's prompt template goes where "{}" is. Templates come in
**groups**, as the papers' code holds them, because the key average depends on the grouping:

    key k = mean over groups g of ( mean over templates t in g of k_t )           (d_in,)

    "memit"  [["{}"], [5 prefixes of 10 tokens]]  (kmeng01/memit `get_context_templates`; also
             unified-model-editing's EMMET and AlphaEdit). The plain prompt weighs ½, each
             prefixed variant 1/10 (memit/compute_ks.py averages within, then across groups).
    "rome"   [["{}", 10 prefixes of 5 tokens, 10 of 10 tokens]]  (kmeng01/rome
             `get_context_templates`, length params [[5, 10], [10, 10]]): one group, so the key
             is the uniform mean over all 21 (rome/compute_u.py).
    "fixed"  [["{}"], n fixed sentences]     (deterministic, no generation)
    "none"   [["{}"]]

Target values (the δ optimisation) use every template of every group once, uniformly; only keys
see the grouping. Generated prefixes are sampled from the model itself, top-5, seeded here (the
originals do not seed, so a comparison with them passes the same templates to both sides:
`TargetConfig.templates`). A generated text becomes a prefix as in the originals: Unicode NFKD,
blank lines to a space, braces blanked (memit: " ", rome: ""), then ". " and "{}".
"""

from __future__ import annotations

import unicodedata

import torch

from .linalg import check_finite
from .tokens import encode_batch

MEMIT_OPENINGS = ["The", "Therefore", "Because", "I", "You"]  # memit: n_gen // 5 per opening
ROME_LENGTHS = [(5, 10), (10, 10)]  # (tokens incl. the start token, count), ROME's defaults
FIXED = [
    "The following is true. ",
    "Here is a fact. ",
    "According to the record, ",
    "As everyone knows, ",
    "In other words, ",
    "It is well known that ",
    "Note this. ",
    "Recall that ",
]
KINDS = ("memit", "rome", "fixed", "none")


@torch.no_grad()
def generate_texts(model, tok, openings: list[str], length: int, seed: int, top_k: int = 5) -> list[str]:
    """One text per opening, sampled top-k until it is `length` tokens long *including* the
    opening's own tokens (the originals' `max_out_len`); deterministic under `seed`."""
    if not openings:
        return []
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    n = len(openings)
    seqs = [tok(o, add_special_tokens=False)["input_ids"] for o in openings]
    while min(len(s) for s in seqs) < length:
        ids, mask, lens = encode_batch(tok, [tok.decode(s) for s in seqs], device)
        logits = model(input_ids=ids, attention_mask=mask).logits  # (n, T, vocab)
        last = logits[torch.arange(n), torch.tensor(lens) - 1].float().cpu()  # (n, vocab)
        check_finite(last, "the model's next-token logits while generating context prefixes (its weights hold NaN/Inf?)")
        top = last.topk(top_k, dim=-1)
        pick = torch.multinomial(top.values.softmax(-1), 1, generator=g)[:, 0]
        for i in range(n):
            if len(seqs[i]) < length:
                seqs[i].append(int(top.indices[i, pick[i]]))
    return [tok.decode(s) for s in seqs]


def as_prefix(text: str, brace: str, drop: str = "") -> str:
    """A generated text as a template "<text>. {}" (the originals' clean-up, see the module doc)."""
    text = unicodedata.normalize("NFKD", text).replace("\n\n", " ")
    if drop:
        text = text.replace(drop, "")
    return text.replace("{", brace).replace("}", brace) + ". {}"


def context_templates(model, tok, kind: str, n: int = 5, length: int = 10, seed: int = 0) -> list[list[str]]:
    """Groups of templates, the plain prompt "{}" first (see the module doc). `n` and `length`
    set the memit and fixed kinds (n prefixes, `length` tokens each); rome uses ROME_LENGTHS."""
    if kind == "none" or (n == 0 and kind != "rome"):
        return [["{}"]]
    if kind == "fixed":
        return [["{}"], [FIXED[i % len(FIXED)] + "{}" for i in range(n)]]
    if kind == "memit":
        openings = [MEMIT_OPENINGS[i % len(MEMIT_OPENINGS)] for i in range(n)]
        return [["{}"], [as_prefix(t, " ") for t in generate_texts(model, tok, openings, length, seed)]]
    if kind == "rome":
        start = tok.bos_token or tok.eos_token or ""
        flat = ["{}"]
        for i, (size, count) in enumerate(ROME_LENGTHS):
            texts = generate_texts(model, tok, [start] * count, size, seed + i)
            flat += [as_prefix(t, "", drop=start) for t in texts]
        return [flat]
    raise ValueError(f"unknown context kind {kind!r}: use one of {', '.join(KINDS)}")


def as_groups(templates) -> list[list[str]]:
    """Groups from groups, or from a flat list of templates (one group: the uniform mean)."""
    templates = list(templates)
    if not templates:
        raise ValueError("no context templates: give at least ['{}']")
    if all(isinstance(t, str) for t in templates):
        templates = [templates]
    groups = [list(g) for g in templates]
    for g in groups:
        if not g or not all(isinstance(t, str) and t.count("{}") == 1 for t in g):
            raise ValueError(f"context template group {g!r}: every template is a string with exactly one '{{}}'")
    return groups


def flatten(templates) -> tuple[list[str], list[float]]:
    """(every template once, in order; the weight of each in the key average: 1 / (G · |g|))."""
    groups = as_groups(templates)
    flat = [t for g in groups for t in g]
    weights = [1.0 / (len(groups) * len(g)) for g in groups for _ in g]
    return flat, weights
