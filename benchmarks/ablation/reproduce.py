"""Rerun one configuration of the committed ablation from scratch and check that its metrics come
out exactly the same (same seed → same numbers; the issue's reproducibility criterion).

    python benchmarks/ablation/reproduce.py --objective memit --strategy spread --batch-size 16

The record is taken from results.jsonl; the same SweepSpec (model, data slice, n, batch size,
tuned settings, seed) is run again into a fresh temporary JSONL, without target sharing, and every
metric is compared with ==.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from editkit import load_model
from editkit.models import model_identity
from editkit.sweep import SweepSpec, read_run_records, run_sweep

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objective", default="memit")
    ap.add_argument("--strategy", default="spread")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default="editkit-teach")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, tok = load_model(a.model)
    ident = model_identity(model)
    tuned = json.loads((HERE / "tuned.json").read_text())
    old = [r for r in read_run_records(HERE / "results.jsonl") if r.get("kind") == "run" and r["model_identity"] == ident
           and r["objective"] == a.objective and r["strategy"] == a.strategy and r["batch_size"] == a.batch_size]
    if not old:
        raise SystemExit(f"no {a.objective}+{a.strategy} run at batch size {a.batch_size} in results.jsonl")
    rec = old[-1]
    spec = SweepSpec(model=a.model, dataset=rec["dataset"]["dataset"], start=rec["dataset"]["start"], n=rec["dataset"]["n"], objectives=[a.objective],
                     strategies=[a.strategy], batch_sizes=[a.batch_size], fixed=tuned[f"{a.objective}+{a.strategy}"],
                     seed=rec["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        (new,) = [r for r in run_sweep(spec, Path(tmp) / "again.jsonl", model, tok, progress=False) if r.get("kind") == "run"]
    diff = {k: (v, new["metrics"].get(k)) for k, v in rec["metrics"].items() if new["metrics"].get(k) != v}
    print(f"{a.objective}+{a.strategy}, batch {a.batch_size}, N = {rec['dataset']['n']}: "
          f"{len(rec['metrics'])} metrics, {len(diff)} differ" + (f": {diff}" if diff else " (exactly equal)"))
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
