"""Whole edits, editkit's defaults against the plain reimplementation of the published
definitions (tests/plain_reference.py), on a randomly initialised full-size GPT-2 small (seed 0,
real tokenizer), CounterFact val requests, MEMIT's 5-layer spread at layers 4–8, 20 steps.

Both sides get the same C0 (editkit's statistics over Wikipedia, --n-tokens) and the same context
templates (MEMIT's groups [["{}"], 5 prefixes] and ROME's one group of 21, generated once by
editkit, seed 0). The number per case is max over layers of ‖ΔW_editkit − ΔW_plain‖_F / ‖ΔW_plain‖_F.

    python benchmarks/faithfulness/check.py [--cases memit-spread-16 rome-plain-1 …] [--out results.jsonl]

Resumable: a case already in --out is skipped. One thread (this machine's cores are shared).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1] / "tests"), str(HERE.parent / "speed")]

import plain_reference as plain  # noqa: E402
from common import CACHE, gpt2_small, setup_logging, templates  # noqa: E402

from editkit import Editor  # noqa: E402
from editkit.config import StatsConfig  # noqa: E402
from editkit.paths import data_dir  # noqa: E402
from editkit.stats import layer_stats  # noqa: E402

LAYERS = [4, 5, 6, 7, 8]
VAL = data_dir() / "counterfact" / "counterfact-val.json"

# case: (objective, strategy, n, kind); kind "seq" = two batches of n, the second compared
CASES = {
    "memit-spread-1": ("memit", True, 1, "one"),
    "memit-spread-4": ("memit", True, 4, "one"),
    "memit-spread-16": ("memit", True, 16, "one"),
    "emmet-single-16": ("emmet", False, 16, "one"),
    "emmet-spread-16": ("emmet", True, 16, "one"),
    "emmet-single-1": ("emmet", False, 1, "one"),
    "alphaedit-spread-16": ("alphaedit", True, 16, "one"),
    "alphaedit-spread-16-earlier-keys": ("alphaedit", True, 16, "seq"),
    "rome-plain-1": ("rome", False, 1, "plain"),
    "rome-average-1": ("rome", False, 1, "average"),
    "memit-spread-8-second-batch": ("memit", True, 8, "seq"),
}


def records(n: int, offset: int = 0) -> list[dict]:
    rs = json.loads(VAL.read_text())[offset : offset + n]
    return [
        dict(prompt=r["prompt"] if "{}" in r["prompt"] else r["prompt"].replace(r["subject"], "{}", 1), subject=r["subject"], target_new=r["target_new"])
        for r in rs
    ]


def rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def run_case(name, model, tok, C, groups, rome_t, stats, threshold):
    objective, spread, n, kind = CASES[name]
    reqs = records(n)
    t = Editor(objective=objective).config.target
    tcfg = dict(steps=t.steps, lr=t.lr, clamp=t.clamp_factor, wd=t.weight_decay, kl_factor=t.kl_factor)
    extra = dict(null_threshold=threshold) if objective == "alphaedit" and threshold else {}
    if objective == "rome":
        ed = Editor(objective="rome", layers=[LAYERS[-1]], templates=[rome_t], constraint_key=kind, progress=False, **stats)
    else:
        ed = Editor(objective=objective, distribute=spread, layers=LAYERS, templates=groups, progress=False, **stats, **extra)
    hp = ed.objective.config
    w0 = time.perf_counter()
    edits = [ed.edit(model, tok, reqs)]
    if kind == "seq":
        edits.append(ed.edit(model, tok, records(n, n)))
    ours = time.perf_counter() - w0
    for e in reversed(edits):
        e.undo()
    layers = LAYERS if spread else LAYERS[-1:]
    w0 = time.perf_counter()
    if objective == "rome":
        ref = [plain.rome(model, tok, reqs[0], LAYERS[-1], rome_t, C[LAYERS[-1]], tcfg, kind)]
    else:
        cache: dict = {}
        solve = {
            "memit": lambda: plain.memit_solve(C, hp.mom2_weight),
            "emmet": lambda: plain.emmet_solve(C, hp.mom2_weight, hp.alpha),
            "alphaedit": lambda: plain.alphaedit_solve(C, hp.null_threshold, hp.beta, cache),
        }[objective]()
        ref = plain.memit_like(model, tok, reqs, layers, groups, solve, tcfg)
        if kind == "seq":
            if objective == "alphaedit":
                plain.alphaedit_remember(model, tok, reqs, layers, groups, cache)
            ref = plain.memit_like(model, tok, records(n, n), layers, groups, solve, tcfg)
    theirs = time.perf_counter() - w0
    mine = edits[-1].updates
    per_layer = {str(u.layer): rel(u.delta, dW) for u, dW in zip(mine, ref)}
    return dict(case=name, objective=objective, strategy="spread" if spread else "single", n=n, kind=kind,
                max_rel=max(per_layer.values()), per_layer=per_layer, editkit_s=round(ours, 1), plain_s=round(theirs, 1),
                target_losses=[round(x, 4) for x in edits[-1].info["target_losses"]], hparams=hp.model_dump())


def table(path: Path) -> str:
    """Markdown rows of the results file, in CASES order (the last record of each case)."""
    rows = {json.loads(l)["case"]: json.loads(l) for l in path.read_text().splitlines()}
    out = ["| case | objective | strategy | requests | max ‖ΔW − ΔW_plain‖/‖ΔW_plain‖ over layers | editkit s | plain s |", "|---|---|---|---|---|---|---|"]
    for name in CASES:
        if name in rows:
            r = rows[name]
            n = f"{r['n']} + {r['n']} (2nd batch compared)" if r["kind"] == "seq" else str(r["n"])
            out.append(f"| {name} | {r['objective']} | {r['strategy']} | {n} | {r['max_rel']:.1e} | {r['editkit_s']} | {r['plain_s']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", action="store_true", help="print the results as a markdown table and exit")
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--out", default=str(HERE / "results.jsonl"))
    ap.add_argument("--n-tokens", type=int, default=20000)
    ap.add_argument("--null-threshold", type=float, default=None, help="AlphaEdit's threshold (default: its official 2e-2)")
    a = ap.parse_args()
    if a.table:
        print(table(Path(a.out)))
        return
    setup_logging()
    torch.set_num_threads(1)
    out = Path(a.out)
    done = {json.loads(l)["case"] for l in out.read_text().splitlines()} if out.exists() else set()
    model, tok = gpt2_small()
    stats = dict(corpus="wikipedia", n_tokens=a.n_tokens, max_len=128, cache_dir=str(CACHE / "c0"))
    C = layer_stats(model, tok, LAYERS, StatsConfig(**stats), progress=False)
    groups = templates(model, tok, n_context=5, length=10, kind="memit")
    rome_t = templates(model, tok, kind="rome")[0]
    for name in a.cases:
        if name in done:
            continue
        snap = {k: v.clone() for k, v in model.state_dict().items()}
        row = run_case(name, model, tok, C, groups, rome_t, stats, a.null_threshold)
        model.load_state_dict(snap)  # the plain side writes its edits into the model
        print(json.dumps(row), flush=True)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
