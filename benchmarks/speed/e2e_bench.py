"""End to end: Editor.edit on N CounterFact requests, GPT-2 small's shape, layers 4–8, split into
phases: key statistics (cold: collected and written; cached: read back), targets, keys (and the
hidden states the spread strategy re-reads), solve, with the peak RSS.

    python benchmarks/speed/e2e_bench.py --algo memit-spread --n 128 --threads 1
    python benchmarks/speed/e2e_bench.py --algo emmet-single --n 128 --threads 1

The context templates (a once-per-model cost, ~30 s) are generated before timing starts and handed
to the editor. Statistics use the editor's settings (n_tokens, max_len) in a fresh cache folder,
so "cold" is a real collection. Appends to benchmarks/speed/results/e2e.jsonl.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from common import LAYERS, gpt2_small, load, peak_rss_mb, requests, rss_mb, setup_logging, templates

import editkit.editor as editor_mod
from editkit import Editor
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", choices=sorted(ALGOS), required=True)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--n-tokens", type=int, default=100_000, help="StatsConfig.n_tokens (editkit's default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-stats-cold", action="store_true", help="use a warm cache folder given by --cache-dir")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    setup_logging()
    torch.set_num_threads(args.threads)
    model, tok = gpt2_small()
    tm = templates(model, tok)
    reqs = requests(args.n)
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
    rec["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    for k, v in rec.items():
        print(f"{k:<20} {v:.2f}" if isinstance(v, float) else f"{k:<20} {v}")


if __name__ == "__main__":
    main()
