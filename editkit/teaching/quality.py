"""Does the teaching model know its facts? Measured with `editkit.scoring`.

    python -m editkit.teaching.quality [--model editkit/assets/editkit-teach] [--n 2000]

A model trained on invented people (`--corpus people`, the shipped one): `people_knowledge`,
top-1 and pairwise rates in the first train phrasing, every train phrasing and the held-out
phrasings (goals: >= 90% in train phrasings, >= 75% held out). A model trained on CounterFact's
facts: a fact counts as known when the model gives its true object a higher mean per-token
log-probability than its case's counterfactual `target_new`. Reported on a seeded sample of n:

    train_phrasings     facts in a phrasing seen in training            (goal >= 90%)
    held_out_phrasings  facts in a phrasing of their relation kept out   (goal >= 75%)
    neighbourhood       neighbour facts in a train phrasing, and CounterFact's own locality
                        prompts (the benchmark's pre-edit neighbourhood score)
    case_prompt / case_rephrase   CounterFact's own prompt / rephrase prompt of each case

plus one greedy sample from a Wikipedia-style prompt. Prints the numbers and writes
`quality.json` into the model folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import torch

from ..paths import data_dir
from ..scoring import compare, target_logprob
from . import TEACH_MODEL_DIR
from .corpus import build_corpus, counterfact_records, render
from .people import RELATIONS

log = logging.getLogger(__name__)

SAMPLE_PROMPT = "The history of the city"


def _rate(model, tok, items, batch_size) -> dict:
    """items: (prompt, true object, counterfactual object) -> fraction where the truth wins."""
    if not items:
        return {"n": 0, "accuracy": None}
    wins = compare(model, tok, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items], batch_size)
    return {"n": len(items), "accuracy": round(wins.float().mean().item(), 4)}


def people_knowledge(model, tok, people, n: int = 500, seed: int = 0) -> dict:
    """A people-trained model (editkit.teaching.people) on a seeded sample of n of its facts: in
    the relation's first train phrasing, in every train phrasing, and in its held-out phrasings,
    the top-1 rate (the object's first token is the argmax after the prompt) and the pairwise
    rate (mean per-token log P(true object) > that of another object of the relation)."""
    rng = random.Random(seed)
    facts = rng.sample(people.facts, min(n, len(people.facts)))
    out = {}
    for name, phrasings in (("first_train", lambda r: people.train_phrasings(r)[:1]), ("all_train", people.train_phrasings),
                            ("held_out", people.held_out_phrasings)):
        prompts, true, other = [], [], []
        for f in facts:
            for t in phrasings(f.relation):
                prompts.append(t.format(f.subject))
                true.append(f.object)
                other.append(rng.choice([o for o in RELATIONS[f.relation][2] if o != f.object]))
        pair = (target_logprob(model, tok, prompts, true) > target_logprob(model, tok, prompts, other)).float().mean()
        out[name] = {"top1": round(top1_rate(model, tok, prompts, true), 3), "pairwise": round(float(pair), 3), "prompts": len(prompts)}
    return out


def top1_rate(model, tok, prompts: list[str], objects: list[str], batch_size: int = 64) -> float:
    """Share of prompts whose next-token argmax is the first token of their object (" " + object);
    batched, padded on the right (the tokenizer's padding side must be "right")."""
    want = torch.tensor([tok(" " + o, add_special_tokens=False)["input_ids"][0] for o in objects])
    hits = 0
    with torch.no_grad():
        for s in range(0, len(prompts), batch_size):
            enc = tok(prompts[s : s + batch_size], return_tensors="pt", padding=True)
            last = enc["attention_mask"].sum(1) - 1
            logits = model(**enc).logits[torch.arange(len(last)), last]
            hits += int((logits.argmax(-1) == want[s : s + batch_size]).sum())
    return hits / len(prompts)


def evaluate(model_dir: str | Path, data_dir: str | Path, n: int = 2000, seed: int = 0, batch_size: int = 64) -> dict:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model_dir = Path(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    splits = json.loads((model_dir / "splits.json").read_text())
    if splits.get("kind") == "people":
        from .cases import people_of

        res = {"model": str(model_dir), "n": n, "seed": seed, "kind": "people", **people_knowledge(model, tok, people_of(model_dir), n, seed)}
        res["sample"] = _sample(model, tok)
        return res
    max_records = splits["counts"].get("max_records")
    fact_cases = splits["counts"].get("fact_cases")
    corpus = build_corpus(data_dir, seed=splits["seed"], max_records=max_records, wiki_chars=0, fact_cases=fact_cases)
    saved = {r["id"]: r for r in splits["relations"]}
    for rel in corpus.relations:  # splits.json is the authority on what was trained
        if rel.id in saved and (
            saved[rel.id]["train"] != corpus.splits[rel.id]["train"]
            or saved[rel.id]["held_out"] != corpus.splits[rel.id]["held_out"]
        ):
            log.warning("relation %s: templates differ from splits.json (code changed?); using splits.json", rel.id)
            corpus.splits[rel.id] = {"train": saved[rel.id]["train"], "held_out": saved[rel.id]["held_out"]}

    rng = random.Random(f"{seed}-quality")
    facts = rng.sample(corpus.facts, min(n, len(corpus.facts)))
    train_items, held_items, neigh_items = [], [], []
    for f in facts:
        train = corpus.train_templates(f)
        if train:
            train_items.append((render(rng.choice(train), f.subject), f.object, f.target_new))
            if f.kind == "neighbour":
                neigh_items.append(train_items[-1])
        held = corpus.held_out_templates(f)
        if held:
            held_items.append((render(rng.choice(held), f.subject), f.object, f.target_new))
    records = counterfact_records(data_dir)
    if max_records is not None:
        records = records[:max_records]
    known = {(split, i) for split, ids in splits["counts"].get("fact_case_ids", {}).items() for i in ids}
    if known:  # the cases whose facts were trained
        records = [r for r in records if (r["split"], int(r.get("case_id", -1))) in known]
    cases = rng.sample(records, min(n, len(records)))

    results = {
        "model": str(model_dir),
        "n": n,
        "seed": seed,
        "metric": "fraction of facts where mean per-token log P(true object) > that of target_new",
        "train_phrasings": _rate(model, tok, train_items, batch_size),
        "held_out_phrasings": _rate(model, tok, held_items, batch_size),
        "neighbourhood_train_phrasings": _rate(model, tok, neigh_items, batch_size),
        "neighbourhood_locality_prompts": _rate(
            model, tok, [(r["locality_prompt"], r["locality_ground_truth"], r["target_new"]) for r in cases], batch_size
        ),
        "case_prompts": _rate(model, tok, [(r["prompt"], r["ground_truth"], r["target_new"]) for r in cases], batch_size),
        "case_rephrase_prompts": _rate(
            model, tok, [(r["rephrase_prompt"], r["ground_truth"], r["target_new"]) for r in cases], batch_size
        ),
    }
    results["sample"] = _sample(model, tok)
    return results


def _sample(model, tok) -> dict:
    ids = tok(SAMPLE_PROMPT, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=40, do_sample=False, pad_token_id=tok.eos_token_id)
    return {"prompt": SAMPLE_PROMPT, "greedy": tok.decode(gen[0], skip_special_tokens=True)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Measure how well the teaching model knows its facts.")
    ap.add_argument("--model", default=str(TEACH_MODEL_DIR))
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-write", action="store_true", help="do not write quality.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    res = evaluate(args.model, args.data, args.n, args.seed, args.batch_size)
    for key in ("first_train", "all_train", "held_out"):
        if key in res:
            print(f"{key:12s} top-1 {100 * res[key]['top1']:.1f}%  pairwise {100 * res[key]['pairwise']:.1f}%  ({res[key]['prompts']} prompts)")
    for key in ("train_phrasings", "held_out_phrasings", "neighbourhood_train_phrasings",
                "neighbourhood_locality_prompts", "case_prompts", "case_rephrase_prompts"):
        if key not in res:
            continue
        r = res[key]
        acc = "n/a" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        print(f"{key:32s} {acc:>7s}  (n={r['n']})")
    print(f"sample: {res['sample']['greedy']!r}")
    if not args.no_write:
        (Path(args.model) / "quality.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
