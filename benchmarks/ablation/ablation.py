"""The committed ablation: {rome, emmet, memit, alphaedit} × {single, spread} × batch size, CounterFact metrics.

    python benchmarks/ablation/ablation.py tune     # first 64 tuning cases: per pair, pick λ/α/β/clamp by Score → tuned.json
                                                    #   (--objectives: only those pairs, merged into tuned.json; --results)
    python benchmarks/ablation/ablation.py run      # the val cases, tuned settings → results.jsonl (--results, --objectives)
    python benchmarks/ablation/ablation.py report   # plots/*.png and table.md from results.jsonl

Tuning and reporting use disjoint cases the teaching model knows: its own CounterFact-format
cases (`editkit-teach:train`, 256, and `editkit-teach:val`, the rest; editkit.teaching.cases:
facts of its invented people that it knows, no split ever trained on a counterfactual target);
for another model, CounterFact's train and val splits. Every stage is resumable (runs already in
its JSONL are skipped) and seeded.
Settings not swept come from the model's shipped hparams.json (Editor.for_model).
Each (pair, batch size) is its own `run_sweep` call, so a cut-short run still leaves complete
curves; target values are shared only within one call (SweepSpec.reuse_targets: tuning points
that differ only in the solver's λ / α / β), so in `run` every run computes its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch

from editkit import load_model
from editkit.evaluation.datasets import default_dataset
from editkit.models import model_identity
from editkit.report import markdown_table, plot
from editkit.sweep import SweepSpec, read_run_records, run_sweep

HERE = Path(__file__).resolve().parent
PAIRS = [(o, s) for o in ("rome", "emmet", "memit", "alphaedit") for s in ("single", "spread")]

# What is tuned per objective × strategy, on the tuning cases (see above). λ = mom2_weight (C = λC0 + KpKpᵀ;
# for ROME it only weighs C0 against the keys of the batch's earlier edits), α = EMMET's
# stabiliser, β / null_threshold = AlphaEdit's ridge and null-space cut, clamp = ‖δ‖ ≤ clamp·‖h‖.
CLAMP = [0.75, 4.0, 10.0]  # MEMIT's (EMMET's, AlphaEdit's) reference 0.75, ROME's 4
TUNE_GRID = {
    "rome": {"mom2_weight": [1e2, 1e4], "clamp_factor": CLAMP},
    "emmet": {"mom2_weight": [1e2, 1e3, 1e4, 1e5], "alpha": [0.01, 0.1, 1.0], "clamp_factor": CLAMP},
    "memit": {"mom2_weight": [1e1, 1e2, 1e3, 1e4, 1e5], "clamp_factor": CLAMP},
    # null_threshold is absolute, as AlphaEdit's (C0's eigenvalues here: 2e-6 … 233; < 0.1: ≈ 280 of 512)
    "alphaedit": {"null_threshold": [1e-2, 1e-1, 1.0], "beta": [1.0, 10.0, 100.0], "clamp_factor": CLAMP},
}


def _model(args):
    torch.set_num_threads(args.threads)
    return load_model(args.model)


def tune(args) -> dict:
    model, tok = _model(args)
    out = args.results
    chosen = {}
    for obj, strat in PAIRS:
        if obj not in args.objectives:
            continue
        grid = {k: v for k, v in TUNE_GRID[obj].items()}
        if obj == "rome":  # sequential edits: cost grows with the batch; tune it at the smallest tuning batch
            batch_sizes = [min(args.tune_batch_sizes)]
        else:
            batch_sizes = args.tune_batch_sizes
        spec = SweepSpec(model=args.model, dataset=args.tune_dataset, n=args.tune_n, objectives=[obj], strategies=[strat],
                         batch_sizes=batch_sizes, grid=grid, seed=args.seed, reuse_targets=True)
        records = run_sweep(spec, out, model, tok, progress=not args.no_progress)
        mine = [r for r in records if r["objective"] == obj and r["strategy"] == strat and r["batch_size"] in batch_sizes
                and r["dataset"]["dataset"] == args.tune_dataset and set(r["point"]) == set(grid)
                and r["model_identity"] == model_identity(model)]
        best = max(_points(mine), key=lambda p: _score(mine, p))
        chosen[f"{obj}+{strat}"] = json.loads(best)
        logging.info("tuned %s+%s: %s (mean S %.3f)", obj, strat, best, _score(mine, best))
    tuned = HERE / "tuned.json"
    if set(args.objectives) != {o for o, _ in PAIRS} and tuned.exists():  # a part of the pairs: keep the others' choices
        chosen = {**json.loads(tuned.read_text()), **chosen}
    names = [f"{o}+{s}" for o, s in PAIRS]  # PAIRS' order; a name of no pair goes last
    tuned.write_text(json.dumps({p: chosen[p] for p in sorted(chosen, key=lambda p: names.index(p) if p in names else len(names))},
                                indent=1) + "\n")
    return chosen


def _points(records) -> list[str]:
    return sorted({json.dumps(r["point"], sort_keys=True) for r in records})


def _score(records, point: str) -> float:
    s = [r["metrics"].get("score") or 0.0 for r in records if json.dumps(r["point"], sort_keys=True) == point]
    return sum(s) / len(s) if s else -math.inf


def run(args) -> None:
    model, tok = _model(args)
    tuned = json.loads((HERE / "tuned.json").read_text()) if (HERE / "tuned.json").exists() else {}
    if not tuned:
        logging.warning("no tuned.json: running with the shipped defaults")
    # failed (pair, b): the sweep's "failed" records, and failures.jsonl (a crash before sweeps recorded failures)
    failures = HERE / "failures.jsonl"
    legacy = [json.loads(l) for l in failures.read_text().splitlines()] if failures.exists() else []
    for b in args.batch_sizes:  # all pairs at a batch size before the next: a cut-short run is still a complete curve prefix
        failed = legacy + [{"pair": f"{r['objective']}+{r['strategy']}", "batch_size": r["batch_size"]}
                           for r in read_run_records(args.results) if r.get("kind") == "failed"]
        for obj, strat in PAIRS:
            if obj not in args.objectives or (obj == "rome" and b > args.rome_max_batch):
                continue
            if any(f["pair"] == f"{obj}+{strat}" and f["batch_size"] < b for f in failed):
                # a larger batch repeats the failed one's sequence of edits from its start: it fails as well
                logging.info("skip %s+%s b=%d: it failed at a smaller batch", obj, strat, b)
                continue
            if any(f["pair"] == f"{obj}+{strat}" and f["batch_size"] == b for f in failed):
                continue
            spec = SweepSpec(model=args.model, dataset=args.dataset, n=args.n, objectives=[obj], strategies=[strat],
                             batch_sizes=[b], fixed=tuned.get(f"{obj}+{strat}", {}), seed=args.seed, reuse_targets=True,
                             generation=args.generation)
            run_sweep(spec, args.results, model, tok, progress=not args.no_progress)  # a failing run is recorded as "failed"


def report(args) -> None:
    model, _ = _model(args)
    ident = model_identity(model)  # only this model's runs (the file may hold runs of an older one)
    records = [r for r in read_run_records(args.results) if r.get("kind") == "run" and r["model_identity"] == ident]
    plot(records, HERE / "plots")
    (HERE / "table.md").write_text(markdown_table(records) + "\n")
    print(markdown_table(records))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["tune", "run", "report"])
    ap.add_argument("--model", default="editkit-teach")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=128, help="cases per run: N = max(n, batch size)")
    ap.add_argument("--batch-sizes", default="1,4,16,64,256,1024")
    ap.add_argument("--rome-max-batch", type=int, default=1024, help="ROME's sequential edits are slow: skip larger batches")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    ap.add_argument("--objectives", default="rome,emmet,memit,alphaedit")
    ap.add_argument("--dataset", default=None, help="where results are reported (default: the model's val cases, else counterfact:val)")
    ap.add_argument("--tune-dataset", default=None, help="where hyperparameters are chosen (default: its train cases, else counterfact:train)")
    ap.add_argument("--tune-n", type=int, default=64)
    ap.add_argument("--tune-batch-sizes", default="16,64")
    ap.add_argument("--generation", action="store_true")
    ap.add_argument("--results", type=Path, default=None,
                    help="where runs go (default: results.jsonl for run, tune.jsonl for tune); two processes on two "
                         "cores: one file each, --objectives split, then concatenate")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    args.dataset = args.dataset or default_dataset(args.model, "val")
    args.tune_dataset = args.tune_dataset or default_dataset(args.model, "train")
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    args.tune_batch_sizes = [int(x) for x in args.tune_batch_sizes.split(",")]
    args.objectives = args.objectives.split(",")
    args.results = args.results or HERE / ("tune.jsonl" if args.stage == "tune" else "results.jsonl")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    {"tune": tune, "run": run, "report": report}[args.stage](args)


if __name__ == "__main__":
    main()
