"""Does a teaching-model candidate still recall its facts behind the context templates that
ROME and MEMIT optimise their targets through (issue 10)?

ROME's and MEMIT's targets and keys are computed over prompts "<prefix>. {prompt}", where the
prefixes are text the model itself generates (editkit.context: "memit", 5 prefixes of 10 tokens;
"rome", 10 of 5 and 10 of 10). For a seeded sample of `--n` of the model's facts, in their
relation's first train phrasing, the top-1 rate (editkit.teaching.quality.top1_rate)

    top1(t) = mean over facts [argmax_v P(v | t.format(prompt)) = first token of the object]

for the plain template t = "{}" and for each prefixed one; printed and appended to `--out` as
one JSON row (plain, the mean and the lowest over each kind's prefixed templates, and every
template with its rate). A model whose facts hold only at the start of a row edits through
prompts it does not recall in.

    OMP_NUM_THREADS=1 python benchmarks/teaching/prefix_recall.py editkit/assets/editkit-teach --out benchmarks/teaching/prefix_recall.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> None:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from editkit.context import context_templates
    from editkit.teaching.cases import people_of
    from editkit.teaching.quality import top1_rate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="append the JSON row here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(a.model)
    tok.padding_side = "right"
    model = GPT2LMHeadModel.from_pretrained(a.model, dtype=torch.float32).eval()
    people = people_of(a.model)
    facts = random.Random(a.seed).sample(people.facts, min(a.n, len(people.facts)))
    prompts = [people.train_phrasings(f.relation)[0].format(f.subject) for f in facts]
    objects = [f.object for f in facts]
    row = {"model": a.model, "n": len(facts), "seed": a.seed, "plain": round(top1_rate(model, tok, prompts, objects, 100), 4)}
    for kind in ("memit", "rome"):
        templates = [t for group in context_templates(model, tok, kind) for t in group if t != "{}"]
        rates = [round(top1_rate(model, tok, [t.format(p) for p in prompts], objects, 100), 4) for t in templates]
        row[kind] = {"mean": round(sum(rates) / len(rates), 4), "min": min(rates), "templates": dict(zip(templates, rates))}
    print(f"{a.model}: plain {row['plain']:.3f}; behind MEMIT's prefixes {row['memit']['mean']:.3f} (lowest {row['memit']['min']:.3f}), "
          f"ROME's {row['rome']['mean']:.3f} (lowest {row['rome']['min']:.3f})")
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
