"""Which of ROME's key and target conventions a teaching-model candidate's single edits depend on:
ROME, b = 1, at one layer, on the candidate's first `--n` requests, with its reference conventions
(editkit/objectives/equality.py) and with each one swapped for MEMIT's, then all of them (which
is EMMET at b = 1 with MEMIT's conventions). One JSON line per variant:

    OMP_NUM_THREADS=1 python benchmarks/teaching/rome_conventions.py /tmp/candY [--layer 0] [--n 100] >> F

The requests, key statistics and target settings are candidate.py's (steps 40, lr 1.0).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from candidate import edits, load_candidate, stats_corpus  # noqa: E402

#: each of ROME's conventions swapped for MEMIT's, then all of them with MEMIT's tuned clamp
VARIANTS = ({}, {"constraint_key": "average"}, {"context": "memit"}, {"delta_module": "block"},
            {"clamp_factor": 10.0, "constraint_key": "average", "context": "memit", "delta_module": "block"})


def main(argv=None) -> None:
    from editkit.evaluation.datasets import Dataset
    from editkit.teaching.people import requests

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--n", type=int, default=100)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tok, _, corpus = load_candidate(Path(a.model))
    reqs = Dataset("counterfact", "people", requests(corpus.people, a.n, seed=1)).requests()
    tmp = Path(tempfile.mkdtemp())
    text = stats_corpus(corpus, tmp)
    for over in VARIANTS:
        print(json.dumps({"model": a.model, **edits(model, tok, reqs, "rome", [a.layer], 1, text, str(tmp), steps=40, lr=1.0, **over)}),
              flush=True)


if __name__ == "__main__":
    main()
