"""CounterFact metrics, as ROME (Meng et al. 2022, §3.2) and MEMIT (Meng et al. 2023, §5.2) define them.

For a request (s, r, o_true → o_new) and a prompt p, P(o | p) = exp(mean per-token log-prob of o's
tokens after p) (editkit.scoring.target_logprob, leading space added). Per request:

    Efficacy      ES = [P(o_new | p) > P(o_true | p)]            EM = P(o_new | p) − P(o_true | p)
                  on the edit prompt p
    Paraphrase    PS = mean_q [P(o_new | q) > P(o_true | q)]     PM = mean_q P(o_new | q) − P(o_true | q)
                  over the paraphrase prompts q (subject written out)
    Neighbourhood NS = mean_u [P(o_true | u) > P(o_new | u)]     NM = mean_u P(o_true | u) − P(o_new | u)
                  over the neighbourhood prompts u (other subjects whose true object is o_true)

Each is averaged over requests (a request without paraphrases or neighbours is left out of that
mean), and the Score S is the harmonic mean of ES, PS and NS. Generation Entropy and Reference
Score (editkit.evaluation.generation) are added when asked for. Every (prompt, target) pair of
every request goes through one batched scoring call.
"""

from __future__ import annotations

import math

import torch

from ..requests import EditRequest
from ..scoring import target_logprob

SUCCESS = ("efficacy_success", "paraphrase_success", "neighborhood_success")
MAGNITUDE = ("efficacy_magnitude", "paraphrase_magnitude", "neighborhood_magnitude")
METRICS = SUCCESS + MAGNITUDE + ("score",)


def counterfact_rows(model, tok, requests: list[EditRequest], batch_size: int = 64) -> list[dict]:
    """Per request: the success indicators and magnitudes above, plus the raw log-probabilities."""
    for r in requests:
        if r.target_true is None:
            raise ValueError(f"request {r.case_id!r} ({r.text!r}) has no target_true; CounterFact metrics compare P(new) with P(true)")
    prompts, targets, where = [], [], []  # where[k] = (request, kind, prompt index)
    for i, r in enumerate(requests):
        for kind, ps in (("rewrite", [r.text]), ("paraphrase", r.paraphrase_prompts), ("neighborhood", r.neighborhood_prompts)):
            for j, p in enumerate(ps):
                prompts += [p, p]
                targets += [r.target_new, r.target_true]  # CounterFact's neighbours share the true object
                where.append((i, kind, j))
    lp = target_logprob(model, tok, prompts, targets, batch_size=batch_size).double()  # (2m,)
    lp_new, lp_true = lp[0::2], lp[1::2]
    rows = [{"case_id": r.case_id, "rewrite": [], "paraphrase": [], "neighborhood": []} for r in requests]
    for k, (i, kind, _j) in enumerate(where):
        rows[i][kind].append((float(lp_new[k]), float(lp_true[k])))
    out = []
    for row in rows:
        o = {"case_id": row["case_id"]}
        (a, b), = row["rewrite"]
        o["efficacy_success"] = float(a > b)
        o["efficacy_magnitude"] = math.exp(a) - math.exp(b)
        o["logprob_new"], o["logprob_true"] = a, b
        if row["paraphrase"]:
            o["paraphrase_success"] = _mean([float(a > b) for a, b in row["paraphrase"]])
            o["paraphrase_magnitude"] = _mean([math.exp(a) - math.exp(b) for a, b in row["paraphrase"]])
        if row["neighborhood"]:
            o["neighborhood_success"] = _mean([float(b > a) for a, b in row["neighborhood"]])
            o["neighborhood_magnitude"] = _mean([math.exp(b) - math.exp(a) for a, b in row["neighborhood"]])
        out.append(o)
    return out


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")


def harmonic_mean(xs) -> float:
    xs = list(xs)
    if any(math.isnan(x) for x in xs):
        return float("nan")
    if any(x <= 0 for x in xs):
        return 0.0
    return len(xs) / sum(1 / x for x in xs)


def summarise(rows: list[dict]) -> dict:
    """Means over requests of every per-request metric, and S = harmonic mean of ES, PS, NS."""
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("case_id", "texts") and not k.startswith("logprob")))
    out = {k: _mean([r.get(k) for r in rows]) for k in keys}
    if all(k in out for k in SUCCESS):
        out["score"] = harmonic_mean(out[k] for k in SUCCESS)
    out["n"] = len(rows)
    return out


def evaluate_counterfact(
    model,
    tok,
    requests: list[EditRequest],
    batch_size: int = 64,
    generation: dict | None = None,
) -> tuple[dict, list[dict]]:
    """(summary, per-request rows). `generation`, when given, holds keyword arguments of
    `generation.generation_metrics` (prompts, references, tfidf, …) and adds GE and RS."""
    rows = counterfact_rows(model, tok, requests, batch_size)
    if generation is not None:
        from .generation import generation_metrics

        for row, g in zip(rows, generation_metrics(model, tok, **generation)):
            row.update(g)
    return summarise(rows), rows


def probabilities(model, tok, requests: list[EditRequest], batch_size: int = 64) -> torch.Tensor:
    """(n, 2): P(new), P(true) of each request on its own prompt (P(true) NaN when unknown)."""
    prompts = [r.text for r in requests]
    new = target_logprob(model, tok, prompts, [r.target_new for r in requests], batch_size).exp()
    true = torch.full_like(new, float("nan"))
    known = [i for i, r in enumerate(requests) if r.target_true]
    if known:
        true[known] = target_logprob(model, tok, [prompts[i] for i in known], [requests[i].target_true for i in known], batch_size).exp()
    return torch.stack([new, true], dim=1)
