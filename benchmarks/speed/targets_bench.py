"""Target values: editkit's compute_targets (fast / full path) vs the serial reference.

GPT-2 small's shape (random init), CounterFact requests, targets at layer 8 (layers 4–8),
20 Adam steps, 11 context templates (plain + 10 generated prefixes of 10 tokens), MEMIT's other
hyperparameters (editkit's defaults). The reference (reference.py) is serial by construction, so
its cost per edit does not depend on N: it is measured on the first --ref-n requests and its
edits/s is used for every N (stated in the output).

    python benchmarks/speed/targets_bench.py --n 1 16 128 --ref-n 4 --threads 1

Each run appends one JSON line per measurement to benchmarks/speed/results/targets.jsonl.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from common import LAYERS, load, parser, start, timed
from flops import Shape, floor, prefix_cost
from flops import reference as ref_flops
from serial_reference import reference_targets  # tests/serial_reference.py (common puts tests/ on the path)

from editkit.config import TargetConfig
from editkit.forward import prefix_families
from editkit.targets import compute_targets, target_rows

log = logging.getLogger("bench.targets")
OUT = Path(__file__).parent / "results" / "targets.jsonl"


def matmul_rate(seconds: float = 2.0) -> float:
    """GFLOP per CPU-second of a (1024×768)·(768×3072) fp32 matmul right now (the machine is shared)."""
    a, w = torch.randn(1024, 768), torch.randn(768, 3072)
    a @ w
    n, t, c = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t < seconds:
        a @ w
        n += 1
    return n * 2 * 1024 * 768 * 3072 / (time.process_time() - c) / 1e9


def flop_counts(tok, reqs, tm, cfg, steps_taken, L, chunk: int = 64) -> dict:
    """GFLOP of the reference, of the floor (per request), and of the floor when context
    prefixes are shared within chunks of `chunk` requests (see flops.py)."""
    s = Shape()
    taken = steps_taken.tolist()
    out = {"reference": 0.0, "floor": 0.0, "floor_shared": 0.0}
    for r, k in zip(reqs, taken):
        rows = target_rows(tok, [r], tm, cfg.kl_prompt)
        out["reference"] += ref_flops(rows, L, s, k + 1, k)
        out["floor"] += floor(rows, L, s, [k])
    for c in range(0, len(reqs), chunk):
        rows = target_rows(tok, reqs[c : c + chunk], tm, cfg.kl_prompt)
        shared = [0] * len(rows.ids)
        for family, P in prefix_families(rows.ids, rows.subj):
            for b in family:
                shared[b] = P
            out["floor_shared"] += prefix_cost(P, s)
        out["floor_shared"] += floor(rows, L, s, taken[c : c + chunk], shared)
    return {k: v / 1e9 for k, v in out.items()}


def main():
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 16, 128])
    ap.add_argument("--offset", type=int, default=0, help="first CounterFact record")
    ap.add_argument("--ref-n", type=int, default=4, help="requests the serial reference is timed on (0: skip)")
    ap.add_argument("--paths", nargs="+", default=["fast"], choices=["fast", "full"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=64)
    args = ap.parse_args()
    b = start(args, n=max(args.n + [args.ref_n]), offset=args.offset)
    model, tok, tm, reqs = b.model, b.tok, b.templates, b.requests
    L = LAYERS[-1]
    cfg = TargetConfig(steps=args.steps)
    OUT.parent.mkdir(exist_ok=True)
    rows = []

    def record(**kw):
        kw.update(threads=args.threads, steps=args.steps, chunk=args.chunk, offset=args.offset, when=time.strftime("%Y-%m-%d %H:%M:%S"))
        with OUT.open("a") as f:
            f.write(json.dumps(kw) + "\n")
        rows.append(kw)
        log.info("%s", kw)

    compute_targets(model, tok, reqs[:1], L, tm, cfg.model_copy(update={"steps": 2}), progress=False)  # warm-up
    ref = None
    if args.ref_n:
        sub = reqs[: args.ref_n]
        rate, l0 = matmul_rate(), load()
        ref, wall, cpu = timed(lambda: reference_targets(model, tok, sub, L, tm, cfg))
        fl = flop_counts(tok, sub, tm, cfg, ref.steps, L, args.chunk)
        record(mode="reference", n=len(sub), wall=wall, cpu=cpu, edits_per_s=len(sub) / wall, cpu_s_per_edit=cpu / len(sub), load_before=l0, load_after=load(),
               matmul_gflops=rate, gflop=fl["reference"], loss_mean=float(ref.losses.mean()), losses=ref.losses.tolist(), steps_taken=ref.steps.tolist())
    ref_rate = rows[0]["edits_per_s"] if ref is not None else None
    for n in args.n:
        for path in args.paths:
            c = cfg.model_copy(update={"path": path})
            rate, l0 = matmul_rate(), load()
            out, wall, cpu = timed(lambda: compute_targets(model, tok, reqs[:n], L, tm, c, chunk=args.chunk, progress=False))
            fl = flop_counts(tok, reqs[:n], tm, cfg, out.steps, L, args.chunk)
            extra = {}
            if ref is not None:
                k = min(n, len(ref.losses))
                extra = dict(
                    speedup_vs_reference=(n / wall) / ref_rate,
                    cpu_speedup_vs_reference=rows[0]["cpu_s_per_edit"] / (cpu / n),
                    max_loss_diff_vs_reference=float((out.losses[:k] - ref.losses[:k]).abs().max()),
                    max_rel_z_diff_vs_reference=float(((out.Z[:, :k] - ref.Z[:, :k]).norm(dim=0) / ref.Z[:, :k].norm(dim=0)).max()),
                )
            record(mode=f"editkit-{path}", n=n, wall=wall, cpu=cpu, edits_per_s=n / wall, cpu_s_per_edit=cpu / n, load_before=l0, load_after=load(),
                   matmul_gflops=rate, reference_gflop=fl["reference"], floor_gflop=fl["floor"], floor_shared_gflop=fl["floor_shared"],
                   achieved_floor_gflops_per_cpu_s=fl["floor"] / cpu, loss_mean=float(out.losses.mean()),
                   steps_taken_mean=float(out.steps.float().mean()), **extra)
    nan = float("nan")
    print(f"\n{'mode':<16}{'N':>6}{'wall s':>9}{'cpu s':>9}{'edits/s':>9}{'×ref':>7}{'×ref cpu':>9}{'mean loss':>10}{'floor GF':>10}{'shared GF':>10}  load")
    for r in rows:
        print(f"{r['mode']:<16}{r['n']:>6}{r['wall']:>9.1f}{r['cpu']:>9.1f}{r['edits_per_s']:>9.3f}{r.get('speedup_vs_reference', nan):>7.1f}"
              f"{r.get('cpu_speedup_vs_reference', nan):>9.1f}{r['loss_mean']:>10.4f}{r.get('floor_gflop', nan):>10.0f}"
              f"{r.get('floor_shared_gflop', nan):>10.0f}  {r['load_before']}")


if __name__ == "__main__":
    main()
