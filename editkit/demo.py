"""The main job, offline: edit editkit's teaching model and show what moved and what did not.

    python -m editkit.demo [--objective emmet] [--strategy spread|single|pmet] [--n 3] [--model editkit-teach]

For a few requests (CounterFact format) whose true object the model knows, prints the prompt's top
prediction and P(target_new) / P(target_true) before and after the edit, and the same for a
neighbourhood prompt (another subject, same relation), which should not move. Probabilities are
exp(mean per-token log-probability), as in the ROME/MEMIT metrics. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch

from .editor import Editor
from .evaluation.datasets import default_dataset, load
from .models import TEACHING_MODEL, load_model, quiet_loading, resolve
from .paths import data_dir
from .requests import EditRequest
from .scoring import target_logprob


def top_token(model, tok, prompt: str) -> str:
    ids = tok(prompt, return_tensors="pt")["input_ids"].to(next(model.parameters()).device)
    with torch.no_grad():
        return tok.decode(model(input_ids=ids).logits[0, -1].argmax()).strip()


def probs(model, tok, prompts: list[str], targets: list[str]) -> list[float]:
    return target_logprob(model, tok, prompts, targets).exp().tolist()


DEMO_CASES = "demo_cases.json"  # in a model's folder: the few CounterFact cases its demo uses


def candidate_requests(model_name: str, split: str = "train", scan: int = 200) -> list[EditRequest]:
    """The cases the demo chooses from: those shipped in the model's folder (`demo_cases.json`, so
    the demo runs without the data folder), else the first `scan` cases of `split` of the model's
    own cases (`<folder>/cases/`), else of CounterFact."""
    shipped = Path(resolve(str(model_name))) / DEMO_CASES
    if shipped.exists():
        return [EditRequest(**r) for r in json.loads(shipped.read_text())["requests"]]
    source = default_dataset(str(model_name), split)
    try:
        return load(source, n=None).requests()[:scan]
    except FileNotFoundError:
        raise SystemExit(
            f"editkit demo: {model_name!r} ships no {DEMO_CASES} and no cases, and the CounterFact file of {source!r} does not exist "
            f"under {data_dir()}. Point EDITKIT_DATA at the data folder (the one holding counterfact/), or use the shipped model: "
            f"--model {TEACHING_MODEL}."
        ) from None


def known_requests(model, tok, n: int, reqs: list[EditRequest]) -> list[EditRequest]:
    """The first n of `reqs` where the model prefers ground_truth on both the prompt and the
    neighbourhood prompt, and gives the neighbour's answer P ≥ 0.5 (so the demo shows a known fact
    being changed, and a known neighbouring fact that should stay)."""
    lp_true = target_logprob(model, tok, [r.text for r in reqs], [r.target_true for r in reqs])
    lp_new = target_logprob(model, tok, [r.text for r in reqs], [r.target_new for r in reqs])
    nb_true = target_logprob(model, tok, [r.neighborhood_prompts[0] for r in reqs], [r.neighborhood_answer for r in reqs])
    nb_new = target_logprob(model, tok, [r.neighborhood_prompts[0] for r in reqs], [r.target_new for r in reqs])
    half = math.log(0.5)
    ok = [i for i in range(len(reqs)) if lp_true[i] > lp_new[i] and nb_true[i] > nb_new[i] and nb_true[i] >= half]
    return [reqs[i] for i in ok[:n]]


def write_cases(model, tok, folder: Path, n: int = 10, split: str = "train", scan: int = 200) -> Path:
    """Store the first n known cases of `split` (the folder's own cases, else CounterFact's) in
    `folder`/demo_cases.json (run once per shipped model: `python -m editkit.demo --write-cases`)."""
    source = default_dataset(str(folder), split)
    reqs = known_requests(model, tok, n, load(source, n=None).requests()[:scan])
    out = Path(folder) / DEMO_CASES
    how = f"the first {n} of {source}[:{scan}] whose true object and neighbour the model knows (editkit.demo.known_requests)"
    out.write_text(json.dumps({"how": how, "requests": [r.model_dump() for r in reqs]}, indent=1) + "\n")
    return out


def snapshot(model, tok, reqs: list[EditRequest]) -> dict:
    prompts = [r.text for r in reqs]
    nb = [r.neighborhood_prompts[0] for r in reqs]
    return {
        "top": [top_token(model, tok, p) for p in prompts],
        "new": probs(model, tok, prompts, [r.target_new for r in reqs]),
        "true": probs(model, tok, prompts, [r.target_true for r in reqs]),
        "nb_top": [top_token(model, tok, p) for p in nb],
        "nb_true": probs(model, tok, nb, [r.neighborhood_answer for r in reqs]),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="editkit demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=TEACHING_MODEL)
    ap.add_argument("--objective", default="emmet", help="a registered objective (`editkit list`): rome, emmet, memit, alphaedit, encore, …")
    ap.add_argument("--strategy", default=None, help="a registered strategy (`editkit list`; default: spread)")
    ap.add_argument("--single", action="store_true", help="the same as --strategy single: edit one layer")
    ap.add_argument("--n", type=int, default=3, help="number of requests, edited together in one batch")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--write-cases", action="store_true", help=f"store the model's demo cases in its folder ({DEMO_CASES}; needs the data folder) and stop")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.no_progress:
        quiet_loading()
    model, tok = load_model(a.model)
    if a.write_cases:
        print(f"wrote {write_cases(model, tok, Path(resolve(a.model)))}")
        return {}
    reqs = known_requests(model, tok, a.n, candidate_requests(a.model))
    if not reqs:
        raise SystemExit("the model knows none of the candidate CounterFact facts; nothing to demonstrate")
    if len(reqs) < a.n:
        print(f"(only {len(reqs)} known cases are available, not the {a.n} asked for)")
    if a.single and a.strategy not in (None, "single"):
        raise SystemExit(f"--single means --strategy single, but --strategy {a.strategy} was given: give one of them")
    strategy = a.strategy or ("single" if a.single else "spread")
    editor = Editor.for_model(model, objective=a.objective, strategy=strategy, progress=not a.no_progress)
    before = snapshot(model, tok, reqs)
    with editor.applied(model, tok, reqs) as edit:
        after = snapshot(model, tok, reqs)
        report = edit.report()
    written = edit.layers
    how = "one after another (ROME's one-at-a-time update)" if editor.one_at_a_time else "together in one batch"
    print(f"{editor.config.objective} + {editor.config.strategy}: {len(reqs)} requests edited {how}, written at layer(s) {written}\n")
    for i, r in enumerate(reqs):
        print(f"[{i}] {r.text} …   (true: {r.target_true!r}  →  new: {r.target_new!r})")
        print(f"    top prediction      {before['top'][i]!r:>16} → {after['top'][i]!r}")
        print(f"    P(new)              {before['new'][i]:16.4f} → {after['new'][i]:.4f}")
        print(f"    P(true)             {before['true'][i]:16.4f} → {after['true'][i]:.4f}")
        print(f"    neighbour: {r.neighborhood_prompts[0]} …  (answer {r.neighborhood_answer!r})")
        print(f"    top prediction      {before['nb_top'][i]!r:>16} → {after['nb_top'][i]!r}")
        print(f"    P(answer)           {before['nb_true'][i]:16.4f} → {after['nb_true'][i]:.4f}")
    print("\n" + report)
    return {"requests": [r.model_dump() for r in reqs], "before": before, "after": after}


if __name__ == "__main__":
    main()
