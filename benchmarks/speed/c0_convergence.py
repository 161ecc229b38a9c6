"""How many tokens C0 needs: one pass over the Wikipedia corpus (collect's chunks, batches and
Gram accumulation), snapshots of C0 at layer 8 as the token count doubles, and the relative change
of a fixed edit's ΔW between successive snapshots:

    change(N) = ‖ΔW(C0_2N) − ΔW(C0_N)‖_F / ‖ΔW(C0_2N)‖_F

The fixed edit: keys K (3072, 16) of the first 16 CounterFact requests at layer 8 (11 templates),
residuals R (768, 16) standard normal (seed 0; ΔW is linear in R), objectives memit and emmet with
their default hyperparameters (λ = 15000, EMMET α = 0.1).

    python benchmarks/speed/c0_convergence.py --max-tokens 131072 --threads 1

Caveat: the model is randomly initialised, so its keys are less structured than a trained model's.
Appends to benchmarks/speed/results/c0.jsonl.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from common import load, parser, start

from editkit.architectures import architecture_of, module
from editkit.config import StatsConfig
from editkit.hooks import hooks, stop_after
from editkit.keys import ModelAccess
from editkit.objectives import OBJECTIVES, Preservation
from editkit.stats import _add_gram, _symmetrize, token_batches
from editkit.tokens import pad_id, pad_rows

log = logging.getLogger("bench.c0")
OUT = Path(__file__).parent / "results" / "c0.jsonl"
LAYER = 8


def main():
    ap = parser(__doc__)
    ap.add_argument("--max-tokens", type=int, default=131072)
    ap.add_argument("--first", type=int, default=4096)
    args = ap.parse_args()
    b = start(args, n=16)
    model, tok = b.model, b.tok
    K = ModelAccess(model, tok, b.requests, b.templates).keys(LAYER)  # (3072, 16)
    R = torch.randn(768, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    solvers = {name: OBJECTIVES.get(name).build() for name in ("memit", "emmet")}

    cfg = StatsConfig(n_tokens=args.max_tokens)
    proj = module(model, architecture_of(model).proj, LAYER)
    acc = torch.zeros(3072, 3072, dtype=torch.float64)
    state = {"count": 0}

    def grab(_m, inputs, _o):
        _add_gram(acc, inputs[0][state["mask"]].float())

    targets = []
    N = args.first
    while N <= args.max_tokens:
        targets.append(N)
        N *= 2
    prev = None
    t0, c0 = time.perf_counter(), time.process_time()
    rows = []

    def run(batch):
        ids, mask = pad_rows(batch, pad_id(tok))
        state["mask"] = mask.bool()
        with torch.no_grad(), hooks((proj, grab)), stop_after(proj):
            model(input_ids=ids, attention_mask=mask)
        state["count"] += int(mask.sum())

    def snapshot():
        nonlocal prev
        C0 = _symmetrize(acc.clone()) / state["count"]
        dW = {name: s(K, R, Preservation(C0)) for name, s in solvers.items()}
        row = dict(tokens=state["count"], wall=time.perf_counter() - t0, cpu=time.process_time() - c0, load=load())
        if prev is not None:
            row["c0_rel_change"] = float((C0 - prev[0]).norm() / C0.norm())
            for name in dW:
                row[f"{name}_dW_rel_change"] = float((dW[name] - prev[1][name]).norm() / dW[name].norm())
        prev = (C0, dW)
        rows.append(row)
        log.info("%s", row)

    model.eval()
    for batch in token_batches(tok, cfg.corpus, cfg.max_len, cfg.n_tokens, cfg.batch_size):
        run(batch)
        if len(batch) == cfg.batch_size and targets and state["count"] >= targets[0]:  # the last, short batch: below
            targets.pop(0)
            snapshot()
    if targets:
        snapshot()
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("a") as f:
        for r in rows:
            f.write(json.dumps({**r, "layer": LAYER, "threads": args.threads, "when": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    print(f"{'tokens':>9}{'ΔC0':>10}{'ΔW memit':>10}{'ΔW emmet':>10}")
    for r in rows:
        nan = float("nan")
        print(f"{r['tokens']:>9}{r.get('c0_rel_change', nan):>10.4f}"
              f"{r.get('memit_dW_rel_change', nan):>10.4f}{r.get('emmet_dW_rel_change', nan):>10.4f}")


if __name__ == "__main__":
    main()
