"""A whole MEMIT + spread edit under the faithful defaults: editkit against a stand-in for the
original code's procedure (kmeng01/memit `execute_memit`), same CPU, same thread count.

GPT-2 small's shape (random init, seed 0), CounterFact requests, layers 4–8, 20 steps, MEMIT's
6 context templates in 2 groups, C0 cached (both sides read the same C0; its collection is not
timed). The stand-in does what execute_memit does, with editkit's keys-free helpers only for
tokenisation:

  * targets: `reference.py` (one request at a time, full forward every step, full-vocabulary
    logits at every position, torch.optim.Adam), as compute_z;
  * per layer: the keys of every (request, template) row in one padded batch through the whole
    model (get_reprs_at_idxs: chunks of 128 rows, no early stop), the block-8 outputs of the plain
    prompts likewise, then `torch.linalg.solve(λ C0 + K Kᵀ, K)` in float64, the update written.

It runs no hooks library, no printing and no cache look-ups, so it is a lower bound of the
original's time: the ratio it gives is a lower bound too.

    python benchmarks/speed/edit_vs_original.py --n 8 16 --threads 1

Appends one JSON line per N to benchmarks/speed/results/edit_vs_original.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from common import CACHE, LAYERS, load, parser, start, timed
from serial_reference import reference_targets  # tests/serial_reference.py (common puts tests/ on the path)

from editkit import Editor
from editkit.config import StatsConfig
from editkit.context import flatten
from editkit.keys import locate
from editkit.stats import layer_stats
from editkit.tokens import encode_batch

OUT = Path(__file__).parent / "results" / "edit_vs_original.jsonl"
STATS = dict(corpus="wikipedia", n_tokens=20000, max_len=128, cache_dir=str(CACHE / "c0"))


@torch.no_grad()
def _read(model, tok, loc, module, inputs: bool) -> torch.Tensor:
    """(rows, d) the module's input/output at each row's index: full forwards, 128 rows a batch."""
    out = []
    for s in range(0, len(loc.texts), 128):
        ids, mask, _ = encode_batch(tok, loc.texts[s : s + 128])
        got = {}
        h = module.register_forward_hook(lambda _m, i, o: got.__setitem__("x", i[0] if inputs else (o[0] if isinstance(o, tuple) else o)))
        try:
            model(input_ids=ids, attention_mask=mask)
        finally:
            h.remove()
        out.append(got["x"][torch.arange(ids.shape[0]), torch.tensor(loc.index[s : s + 128])].double())
    return torch.cat(out)


def original_like(model, tok, reqs, groups, C0, lam, cfg) -> list[torch.Tensor]:
    flat, weights = flatten(groups)
    Z = reference_targets(model, tok, reqs, LAYERS[-1], groups, cfg).Z  # (d, n)
    blocks = model.transformer.h
    loc, plain = locate(tok, reqs, flat), locate(tok, reqs, ["{}"])
    w = torch.tensor(weights * len(reqs), dtype=torch.float64)[:, None]
    deltas = []
    for i, l in enumerate(LAYERS):
        k = _read(model, tok, loc, blocks[l].mlp.c_proj, True) * w  # (rows, d_in)
        K = torch.zeros(len(reqs), k.shape[1], dtype=torch.float64).index_add_(0, torch.tensor(loc.owner), k).T
        H = _read(model, tok, plain, blocks[LAYERS[-1]], False).T
        adj = torch.linalg.solve(lam * C0[l] + K @ K.T, K)
        dW = ((Z - H) / (len(LAYERS) - i)) @ adj.T  # (d_out, d_in)
        with torch.no_grad():
            blocks[l].mlp.c_proj.weight += dW.T.float()
        deltas.append(dW)
    return deltas


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, nargs="+", default=[8, 16])
    a = ap.parse_args()
    b = start(a, n=max(a.n), offset=200, with_templates=False)
    model, tok = b.model, b.tok
    from common import templates

    groups = templates(model, tok, n_context=5, length=10, kind="memit")
    C0 = layer_stats(model, tok, LAYERS, StatsConfig(**STATS), progress=False)
    snap = {k: v.clone() for k, v in model.state_dict().items()}
    for n in a.n:
        reqs = b.requests[:n]
        ed = Editor(objective="memit", distribute=True, layers=LAYERS, templates=groups, progress=False, **STATS)
        before = load()
        edit, wall, cpu = timed(lambda: ed.edit(model, tok, reqs))  # a fresh Editor: C0 read from the cache, factorised cold
        edit.undo()
        ours = [u.delta for u in edit.updates]
        theirs, wall_o, cpu_o = timed(lambda: original_like(model, tok, reqs, groups, C0, ed.objective.config.mom2_weight, ed.config.target))
        model.load_state_dict(snap)
        rel = max(float((x - y).norm() / y.norm()) for x, y in zip(ours, theirs))
        row = dict(n=n, editkit_wall_s=wall, editkit_cpu_s=cpu, original_like_wall_s=wall_o, original_like_cpu_s=cpu_o,
                   wall_ratio=wall_o / wall, cpu_ratio=cpu_o / cpu, per_edit_s=wall / n, max_rel_dW=rel,
                   threads=a.threads, load_before=before, load_after=load(), seconds=edit.info["seconds"])
        print(json.dumps(row), flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with OUT.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
