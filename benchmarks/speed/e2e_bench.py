"""End to end: Editor.edit on N CounterFact requests, GPT-2 small's shape, layers 4–8, split into
phases: key statistics (cold: collected and written; cached: read back), targets, keys (and the
hidden states the spread strategy re-reads), solve, with the peak RSS.

    python benchmarks/speed/e2e_bench.py --algo memit-spread --n 128 --threads 1
    python benchmarks/speed/e2e_bench.py --algo emmet-single --n 128 --threads 1

The context templates (a once-per-model cost, ~30 s) are generated before timing starts and handed
to the editor. Statistics use the editor's settings (n_tokens, max_len) in a fresh cache folder,
so "cold" is a real collection. Appends to benchmarks/speed/results/e2e.jsonl.

--replay-keys (spread only): after the edit, the weights are put back and the spread's key reads
are replayed, keys(l_1), W_{l_1} += ΔW_1, keys(l_2), … with the edit's own ΔW, once with the
cached block inputs (editkit's default) and once from the embeddings every time (cache_bytes=0),
back to back, wall and CPU seconds; also max |K_cached − K_plain| / max |K_plain| per layer.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
import time
from pathlib import Path

import torch
from common import LAYERS, load, parser, peak_rss_mb, rss_mb, start, timed

from editkit import Editor
from editkit.architectures import weight_param
from editkit.keys import ModelAccess
from editkit.stats import layer_stats

log = logging.getLogger("bench.e2e")
OUT = Path(__file__).parent / "results" / "e2e.jsonl"
ALGOS = {"memit-spread": dict(objective="memit", distribute=True), "emmet-single": dict(objective="emmet", distribute=False)}


def timing(acc: dict, key: str, fn):
    @functools.wraps(fn)
    def wrapped(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t

    return wrapped


def replay_keys(model, tok, reqs, tm, updates) -> dict:
    """The spread's key reads with the edit's ΔW, cached then plain; the weights are restored."""
    saved = {u.layer: weight_param(model, u.layer).detach().clone() for u in updates}
    out, keys = {"replay_load_before": load()}, {}
    for name, kw in (("cached", {}), ("plain", {"cache_bytes": 0})):
        access = ModelAccess(model, tok, reqs, tm, **kw)

        def reads():
            got = []
            for u in updates:
                got.append(access.keys(u.layer))
                access.add(u.layer, u.delta)
            return got

        keys[name], out[f"replay_keys_{name}_wall_s"], out[f"replay_keys_{name}_cpu_s"] = timed(reads)
        with torch.no_grad():
            for layer, W in saved.items():
                weight_param(model, layer).copy_(W)
        log.info("replay %s: %.1f s wall, %.1f s CPU", name, out[f"replay_keys_{name}_wall_s"], out[f"replay_keys_{name}_cpu_s"])
    out["replay_max_rel_diff"] = [float((a - b).abs().max() / b.abs().max()) for a, b in zip(keys["cached"], keys["plain"])]
    out["replay_load_after"] = load()
    return out


def main():
    ap = parser(__doc__)
    ap.add_argument("--algo", choices=sorted(ALGOS), required=True)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--n-tokens", type=int, default=100_000, help="StatsConfig.n_tokens (editkit's default)")
    ap.add_argument("--skip-stats-cold", action="store_true", help="use a warm cache folder given by --cache-dir")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--replay-keys", action="store_true", help="then time the spread's key reads with and without the cache")
    args = ap.parse_args()
    b = start(args, n=args.n)
    model, tok, tm, reqs = b.model, b.tok, b.templates, b.requests
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="editkit-e2e-")
    ed = Editor(**ALGOS[args.algo], layers=LAYERS, steps=20, n_context=10, context_len=10, n_tokens=args.n_tokens, cache_dir=cache_dir, progress=False)
    ed._templates[model] = tm  # generated above with the same settings and seed
    written = LAYERS if ed.config.distribute else LAYERS[-1:]
    rec = dict(algo=args.algo, n=args.n, n_tokens=args.n_tokens, threads=args.threads, layers=LAYERS, written=written, load_before=load())
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rec["rss_start_mb"] = rss_mb()

    # statistics, cold then cached (the editor then finds them in the cache)
    if not args.skip_stats_cold:
        t = time.perf_counter()
        layer_stats(model, tok, written, ed.config.stats, progress=False)
        rec["stats_cold_s"] = time.perf_counter() - t
    t = time.perf_counter()
    layer_stats(model, tok, written, ed.config.stats, progress=False)
    rec["stats_cached_s"] = time.perf_counter() - t

    acc: dict = {}
    orig = {name: getattr(ModelAccess, name) for name in ("keys", "outputs")}
    orig_solver = Editor._solver
    ModelAccess.keys = timing(acc, "keys_s", ModelAccess.keys)
    ModelAccess.outputs = timing(acc, "outputs_s", ModelAccess.outputs)

    def solver(self, model, pres, edit):
        return timing(acc, "solve_s", orig_solver(self, model, pres, edit))

    Editor._solver = solver
    try:
        t = time.perf_counter()
        edit = ed.edit(model, tok, reqs)
        rec["edit_total_s"] = time.perf_counter() - t
    finally:
        for name, fn in orig.items():
            setattr(ModelAccess, name, fn)
        Editor._solver = orig_solver
    info = edit.info
    rec["targets_s"] = info["seconds"]["targets"]
    rec["distribute_s"] = info["seconds"]["distribute"]
    rec.update({k: v for k, v in acc.items()})
    rec["other_s"] = rec["edit_total_s"] - rec["targets_s"] - rec["distribute_s"]
    rec["peak_rss_mb"] = peak_rss_mb()
    rec["load_after"] = load()
    rec["target_loss_mean"] = sum(info["target_losses"]) / len(info["target_losses"])
    if args.replay_keys and len(edit.updates) > 1:
        edit.undo()
        rec.update(replay_keys(model, tok, reqs, tm, edit.updates))
    rec["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    for k, v in rec.items():
        print(f"{k:<20} {v:.2f}" if isinstance(v, float) else f"{k:<20} {v}")


if __name__ == "__main__":
    main()
