"""How much of an edit at one layer reaches other people in the same prompt: the key overlap
behind spread's neighbourhood losses (issue 10), per layer of a teaching-model candidate.

A rank-one edit that writes the key k_s (the MLP's hidden activation at the subject's last token,
(d_in,)) to a new value, with the key statistics C0 as its preservation term (ROME's update):

    ΔW = (v − W k_s) (C0⁻¹ k_s)ᵀ / (k_sᵀ C0⁻¹ k_s)          (d_out, d_in)

moves another person's MLP output at the same layer by ΔW k_n = (v − W k_s) · r(s, n), with

    r(s, n) = k_nᵀ C0⁻¹ k_s / k_sᵀ C0⁻¹ k_s                  (scalar)

the share of the edit that person n receives. Measured on the edit prompt of `--n` requests
(`people.requests`, their plain prompts): r to up to 5 *neighbours* (people with the same object
of the relation, the request's neighbourhood prompts) and to 5 *others* (a different object),
and the plain cosine of the keys, averaged; C0 over the candidate's training text (100,000
tokens, candidate.py's `stats_corpus`, ridge 10⁻⁶ of its mean eigenvalue).

    OMP_NUM_THREADS=1 python benchmarks/teaching/key_overlap.py editkit/assets/editkit-teach --out benchmarks/teaching/key_overlap.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def subject_keys(model, tok, template: str, subject: str, layers: list[int]) -> dict[int, torch.Tensor]:
    """{layer: key at the subject's last token of template.format(subject)} (float64), located as
    editing locates it (`edit_position`, fact_token "subject_last")."""
    from editkit.architectures import proj_module
    from editkit.hooks import hooks
    from editkit.tokens import edit_position

    text, i = edit_position(tok, template, subject)
    seen: dict[int, torch.Tensor] = {}
    with hooks(*[(proj_module(model, l), lambda m, inp, out, l=l: seen.__setitem__(l, inp[0][0, i].double())) for l in layers]), torch.no_grad():
        model(input_ids=tok(text, return_tensors="pt")["input_ids"])
    return seen


def edit_share(k_s: torch.Tensor, k_n: torch.Tensor, C_inv: torch.Tensor) -> float:
    """r(s, n) = k_nᵀ C0⁻¹ k_s / k_sᵀ C0⁻¹ k_s: ΔW k_n = r · (v − W k_s) for ROME's update on k_s."""
    return float(k_n @ C_inv @ k_s / (k_s @ C_inv @ k_s))


def overlap(model, tok, people, C0: dict[int, torch.Tensor], n: int, seed: int = 0) -> dict:
    from editkit.objectives import Preservation
    from editkit.teaching.people import requests

    layers = sorted(C0)
    inv = {l: torch.linalg.inv(Preservation(C, ridge=1e-6).C0) for l, C in C0.items()}  # the ridge the edits use
    by_relation: dict[str, list] = {}
    for f in people.facts:
        by_relation.setdefault(f.relation, []).append(f)
    rng = random.Random(seed)
    acc = {l: {"share_neighbour": [], "share_other": [], "cos_neighbour": [], "cos_other": []} for l in layers}
    for r in requests(people, n, seed=1):
        rw = r["requested_rewrite"]
        same = [f.subject for f in by_relation[rw["relation_id"]] if f.object == rw["target_true"]["str"] and f.subject != rw["subject"]]
        other = [f.subject for f in by_relation[rw["relation_id"]] if f.object != rw["target_true"]["str"]]
        k_s = subject_keys(model, tok, rw["prompt"], rw["subject"], layers)
        for kind, subjects in (("neighbour", same[:5]), ("other", rng.sample(other, 5))):
            for o in subjects:
                k_o = subject_keys(model, tok, rw["prompt"], o, layers)
                for l in layers:
                    a, b = k_s[l], k_o[l]
                    acc[l][f"share_{kind}"].append(edit_share(a, b, inv[l]))
                    acc[l][f"cos_{kind}"].append(float(a @ b / (a.norm() * b.norm())))
    return {str(l): {k: round(sum(v) / len(v), 4) for k, v in m.items()} for l, m in acc.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=200, help="requests")
    ap.add_argument("--layers", default="0,1,2")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    from candidate import load_candidate, stats_corpus

    from editkit.config import StatsConfig
    from editkit.jsonl import emit
    from editkit.stats import layer_stats

    model, tok, _, corpus = load_candidate(Path(a.model))
    layers = [int(x) for x in a.layers.split(",")]
    tmp = Path(tempfile.mkdtemp())
    cfg = StatsConfig(corpus=stats_corpus(corpus, tmp), n_tokens=100_000, cache_dir=tmp)
    C0 = {l: C.double() for l, C in layer_stats(model, tok, layers, cfg, progress=False).items()}
    emit({"model": a.model, "n": a.n, "layers": overlap(model, tok, corpus.people, C0, a.n)}, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
