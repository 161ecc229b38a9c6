"""Key statistics: tokens/s of editkit.stats.collect (layers 4–8 in one pass) vs the model's plain
full forward (logits included) over the same token chunks, measured back to back (ABAB…).

    python benchmarks/speed/stats_bench.py --n-tokens 16384 --repeats 2 --threads 1
    python benchmarks/speed/stats_bench.py --n-tokens 16384 --repeats 2 --threads 1 --gram-block 100000   # before

Both sides tokenise the corpus inside the timed region (collect does; the baseline runs the same
`token_chunks` generator). Appends to benchmarks/speed/results/stats.jsonl.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from common import LAYERS, load, parser, start, timed

import editkit.stats as stats_mod
from editkit.config import StatsConfig
from editkit.stats import collect, token_batches
from editkit.tokens import pad_id, pad_rows

log = logging.getLogger("bench.stats")
OUT = Path(__file__).parent / "results" / "stats.jsonl"


@torch.no_grad()
def plain_forward(model, tok, cfg: StatsConfig) -> int:
    """The model's full forward (all blocks, the head at every position) over collect's batches."""
    count = 0
    for batch in token_batches(tok, cfg.corpus, cfg.max_len, cfg.n_tokens, cfg.batch_size):
        ids, mask = pad_rows(batch, pad_id(tok))
        model(input_ids=ids, attention_mask=mask)
        count += int(mask.sum())
    return count


def main():
    ap = parser(__doc__)
    ap.add_argument("--n-tokens", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gram-block", type=int, default=None,
                    help="editkit.stats.GRAM_BLOCK; 100000 = one tile = the full Xᵀ X product (collect before the symmetric tiles)")
    args = ap.parse_args()
    if args.gram_block:
        stats_mod.GRAM_BLOCK = args.gram_block
    b = start(args, with_templates=False)
    model, tok = b.model, b.tok
    cfg = StatsConfig(n_tokens=args.n_tokens, batch_size=args.batch_size)
    collect(model, tok, LAYERS, cfg.model_copy(update={"n_tokens": 512}), progress=False)  # warm-up
    OUT.parent.mkdir(exist_ok=True)
    res = {"collect": [], "forward": []}
    for _ in range(args.repeats):
        for name, fn in (("collect", lambda: collect(model, tok, LAYERS, cfg, progress=False)), ("forward", lambda: plain_forward(model, tok, cfg))):
            l0 = load()
            _, wall, cpu = timed(fn)
            rec = dict(what=name, n_tokens=args.n_tokens, wall=wall, cpu=cpu, tok_per_s=args.n_tokens / wall, tok_per_cpu_s=args.n_tokens / cpu,
                       load_before=l0, load_after=load(), threads=args.threads, batch_size=args.batch_size, layers=LAYERS,
                       gram_block=stats_mod.GRAM_BLOCK, when=time.strftime("%Y-%m-%d %H:%M:%S"))
            res[name].append(rec)
            with OUT.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            log.info("%s", rec)
    print(f"\n{'':<10}{'wall tok/s':>12}{'cpu tok/s':>12}")
    for name, recs in res.items():
        print(f"{name:<10}" + "".join(f"{r['tok_per_s']:>12.0f}{r['tok_per_cpu_s']:>12.0f}  {r['load_before']}\n{'':<10}" for r in recs))
    for key in ("tok_per_s", "tok_per_cpu_s"):
        ratios = [c[key] / f[key] for c, f in zip(res["collect"], res["forward"])]
        print(f"collect / forward ({key}), per repeat: " + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
