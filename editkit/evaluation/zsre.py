"""zsRE metrics, as ROME (§3.1) and MEMIT (§5.1) define them: top-1 token accuracy, teacher-forced.

For a question q and an answer a = (a_1 … a_m) (tokens, leading space), the model reads q + a_<j
and predicts a_j; token j is correct when argmax_v P(v | q, a_<j) = a_j. Per request:

    Efficacy        mean_j [argmax = a_j]  for the edit question and the new answer
    Generalisation  the same on the rephrased question
    Specificity     on the unrelated `loc` question with its answer `loc_ans` as the teacher-forced
                    continuation: the fraction of positions whose top-1 prediction is the same as
                    the unedited model's (1 for the unedited model by definition). MEMIT reports
                    instead the accuracy against `loc_ans` itself; that is `loc_accuracy` here.

Means over requests. Tokenisation and padding follow editkit.scoring (prompt and answer tokenised
apart and concatenated; right padding, position ids over real tokens).
"""

from __future__ import annotations

import torch

from ..architectures import device_of
from ..hooks import eval_mode
from ..requests import EditRequest
from ..tokens import pad_id, pad_rows


def _target_text(target: str) -> str:
    return target if target.startswith(" ") else " " + target

METRICS = ("efficacy", "generalization", "specificity")


@torch.no_grad()
def top1_predictions(model, tok, prompts: list[str], targets: list[str], batch_size: int = 64) -> list[tuple[list[int], list[int]]]:
    """Per pair: (target token ids, the model's argmax at each position that predicts one)."""
    p_ids = tok(list(prompts), add_special_tokens=False)["input_ids"]
    t_ids = tok([_target_text(t) for t in targets], add_special_tokens=False)["input_ids"]
    rows = [(list(p) + list(t), len(t)) for p, t in zip(p_ids, t_ids)]
    for i, (p, t) in enumerate(zip(p_ids, t_ids)):
        if not p or not t:
            raise ValueError(f"pair {i} ({prompts[i]!r}, {targets[i]!r}) has an empty prompt or target")
    pad = pad_id(tok)
    dev = device_of(model)
    out: list = [None] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    with eval_mode(model):
        for s in range(0, len(rows), batch_size):
            idx = order[s : s + batch_size]
            ids, mask = pad_rows([rows[i][0] for i in idx], pad)
            pos = (mask.cumsum(-1) - 1).clamp_min(0)
            logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev)).logits  # (B, T, V)
            for r, i in enumerate(idx):
                seq, m = rows[i]
                first = len(seq) - m
                pred = logits[r, first - 1 : len(seq) - 1].argmax(-1)  # (m,)
                out[i] = (seq[first:], pred.tolist())
    return out


def _acc(pair) -> float:
    t, p = pair
    return sum(a == b for a, b in zip(t, p)) / len(t)


def zsre_rows(model, tok, requests: list[EditRequest], baseline: list[dict] | None = None, batch_size: int = 64) -> list[dict]:
    """Per request: efficacy, generalization, loc_accuracy, loc_pred (top-1 ids on `loc`) and,
    given the unedited model's rows as `baseline`, specificity."""
    prompts, targets, where = [], [], []
    for i, r in enumerate(requests):
        prompts.append(r.text), targets.append(r.target_new), where.append((i, "efficacy"))
        for q in r.paraphrase_prompts:
            prompts.append(q), targets.append(r.target_new), where.append((i, "generalization"))
        for u in r.neighborhood_prompts:
            if r.neighborhood_answer is None:
                raise ValueError(f"zsRE request {r.case_id!r} has a loc question but no loc answer")
            prompts.append(u), targets.append(r.neighborhood_answer), where.append((i, "loc"))
    preds = top1_predictions(model, tok, prompts, targets, batch_size)
    acc: list[dict] = [{"efficacy": [], "generalization": [], "loc": []} for _ in requests]
    for (i, kind), pair in zip(where, preds):
        acc[i][kind].append(pair)
    rows = []
    for i, (r, a) in enumerate(zip(requests, acc)):
        row = {"case_id": r.case_id, "efficacy": _acc(a["efficacy"][0])}
        if a["generalization"]:
            row["generalization"] = sum(map(_acc, a["generalization"])) / len(a["generalization"])
        if a["loc"]:
            row["loc_accuracy"] = sum(map(_acc, a["loc"])) / len(a["loc"])
            row["loc_pred"] = [p for _, p in a["loc"]]
            if baseline is not None:
                ref = baseline[i]["loc_pred"]
                same = [sum(x == y for x, y in zip(p, q)) / len(p) for p, q in zip(row["loc_pred"], ref)]
                row["specificity"] = sum(same) / len(same)
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("case_id", "loc_pred")))
    out = {}
    for k in keys:
        xs = [r[k] for r in rows if k in r]
        out[k] = sum(xs) / len(xs)
    out["n"] = len(rows)
    return out


def evaluate_zsre(model, tok, requests: list[EditRequest], baseline: list[dict] | None = None, batch_size: int = 64) -> tuple[dict, list[dict]]:
    """(summary, per-request rows). Without `baseline`, specificity is measured against this very
    model (so it is 1): pass the unedited model's rows to measure an edited one."""
    rows = zsre_rows(model, tok, requests, baseline, batch_size)
    if baseline is None:
        for r in rows:
            if "loc_pred" in r:
                r["specificity"] = 1.0
    return summarise(rows), rows
