"""Which text should the teaching model's key statistics C0 come from? Wikipedia (what the papers
use for GPT-2) against the model's own kind of text (the generated corpus "editkit-teach").

    python benchmarks/teaching/c0_corpus.py [--n 64] [--n-tokens 200000]   → c0_corpus.md

The first n val cases the model knows (ground_truth above target_new on the prompt and the
neighbourhood prompt) are edited together with EMMET + spread at the shipped settings
(Editor.for_model), once per statistics corpus, and scored with the CounterFact metrics
(ES, PS, NS and S as in ROME/MEMIT). The targets are the same in both runs (same seed, same model:
C0 only enters the solve).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from editkit import Editor, load_model
from editkit.demo import known_requests
from editkit.evaluation.counterfact import evaluate_counterfact

HERE = Path(__file__).resolve().parent
CORPORA = ["wikipedia", "editkit-teach"]
COLUMNS = ["efficacy_success", "paraphrase_success", "neighborhood_success", "score", "efficacy_magnitude", "neighborhood_magnitude"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--n-tokens", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, tok = load_model("editkit-teach")
    reqs = known_requests(model, tok, a.n, split="val", scan=4 * a.n)
    rows = []
    for corpus in CORPORA:
        editor = Editor.for_model(model, objective="emmet", distribute=True, corpus=corpus, n_tokens=a.n_tokens, progress=False)
        with editor.applied(model, tok, reqs):
            summary, _ = evaluate_counterfact(model, tok, reqs)
        rows.append((corpus, summary))
        print(corpus, {k: round(summary[k], 3) for k in COLUMNS}, flush=True)
    lines = [
        f"`python benchmarks/teaching/c0_corpus.py --n {a.n} --n-tokens {a.n_tokens}`: {len(reqs)} known val cases edited together, "
        "EMMET + spread at the shipped settings, C0 over the first n_tokens of each corpus.",
        "",
        "| C0 corpus | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    lines += [f"| {c} | " + " | ".join(f"{s[k]:.3f}" for k in COLUMNS) + " |" for c, s in rows]
    (HERE / "c0_corpus.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
