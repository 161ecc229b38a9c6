"""How probable is a target continuation? Batched, padding-safe scoring shared across editkit.

    target_logprob(model, tok, prompts, targets)  -> (n,) mean per-token log P(target | prompt)
    compare(model, tok, prompts, a, b)            -> (n,) bool: a more probable than b

The target is tokenised on its own with a leading space (" Paris"), the prompt on its own, and the
two id lists are concatenated, so every target is scored with exactly the same ids whatever the
prompt. Sequences are right-padded; the attention mask hides the padding and position ids count
real tokens only, so a padded row gives the same numbers as the row alone. The tokenizer is not
modified (GPT-2's has no pad token): padding uses any valid id, which the mask hides.
"""

from __future__ import annotations

import torch

from .hooks import eval_mode
from .tokens import pad_id, pad_rows


def _target_text(target: str) -> str:
    return target if target.startswith(" ") else " " + target


def _max_positions(model) -> int | None:
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@torch.no_grad()
def target_logprob(model, tok, prompts: list[str], targets: list[str], batch_size: int = 64) -> torch.Tensor:
    """Mean per-token log-probability of each target (with a leading space) after its prompt.

    Returns a float32 CPU tensor of shape (n,). The model is put in eval mode for the call and
    restored afterwards. Prompts longer than the model's context lose tokens on the left.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets: give one target per prompt.")
    n = len(prompts)
    if n == 0:
        return torch.zeros(0)
    prompt_ids = tok(list(prompts), add_special_tokens=False)["input_ids"]
    target_ids = tok([_target_text(t) for t in targets], add_special_tokens=False)["input_ids"]
    limit = _max_positions(model)
    rows: list[tuple[list[int], int]] = []  # (ids, number of target tokens)
    for i, (p, t) in enumerate(zip(prompt_ids, target_ids)):
        if not p:
            raise ValueError(f"prompt {i} ({prompts[i]!r}) is empty: the first target token needs a context.")
        if not t:
            raise ValueError(f"target {i} ({targets[i]!r}) is empty.")
        if limit is not None and len(p) + len(t) > limit:
            keep = limit - len(t)
            if keep < 1:
                raise ValueError(f"target {i} ({targets[i]!r}) alone is longer than the model context ({limit}).")
            p = p[-keep:]
        rows.append((list(p) + list(t), len(t)))

    pad = pad_id(tok)
    device = next(model.parameters()).device
    out = torch.empty(n, dtype=torch.float32)
    order = sorted(range(n), key=lambda i: len(rows[i][0]))  # similar lengths together: less padding
    with eval_mode(model):
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_rows([rows[i][0] for i in idx], pad)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)
            ).logits  # (B, T, V)
            for r, i in enumerate(idx):
                seq, n_t = rows[i]
                first = len(seq) - n_t  # index of the first target token
                # (n_t, V): the positions that predict the target tokens
                logp = torch.log_softmax(logits[r, first - 1 : len(seq) - 1].float(), dim=-1)
                tgt = torch.tensor(seq[first:], device=logp.device)
                out[i] = logp.gather(-1, tgt[:, None]).mean().cpu()
    return out


def compare(
    model, tok, prompts: list[str], a_targets: list[str], b_targets: list[str], batch_size: int = 64
) -> torch.Tensor:
    """(n,) bool: target a has a higher mean per-token log-probability than target b."""
    both = target_logprob(model, tok, list(prompts) * 2, list(a_targets) + list(b_targets), batch_size)
    n = len(prompts)
    return both[:n] > both[n:]


__all__ = ["compare", "target_logprob"]
