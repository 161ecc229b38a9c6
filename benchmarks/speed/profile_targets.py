"""torch.profiler tables of compute_targets, before (path="full": the whole model every step) and
after (path="fast"), on the targets benchmark's set-up.

    python benchmarks/speed/profile_targets.py --n 4 --paths full fast --threads 1

Writes benchmarks/speed/results/profile-<path>-n<N>.txt (ops sorted by self CPU time).
"""

from __future__ import annotations

import time
from pathlib import Path

from common import LAYERS, load, parser, start
from torch.profiler import ProfilerActivity, profile, record_function

from editkit.config import TargetConfig
from editkit.targets import compute_targets

OUT = Path(__file__).parent / "results"


def main():
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--paths", nargs="+", default=["full", "fast"])
    ap.add_argument("--rows", type=int, default=20)
    args = ap.parse_args()
    b = start(args, n=args.n)
    model, tok, tm, reqs = b.model, b.tok, b.templates, b.requests
    OUT.mkdir(exist_ok=True)
    for path in args.paths:
        cfg = TargetConfig(steps=args.steps, path=path)
        compute_targets(model, tok, reqs[:1], LAYERS[-1], tm, cfg.model_copy(update={"steps": 2}), progress=False)
        l0 = load()
        w, c = time.perf_counter(), time.process_time()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function(f"compute_targets[{path}]"):
                compute_targets(model, tok, reqs, LAYERS[-1], tm, cfg, progress=False)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        head = (f"compute_targets path={path} N={args.n} steps={args.steps} threads={args.threads}: wall {wall:.1f} s, "
                f"cpu {cpu:.1f} s (profiler on), {l0}\n")
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
        (OUT / f"profile-{path}-n{args.n}.txt").write_text(head + table + "\n")
        print(head + table)


if __name__ == "__main__":
    main()
