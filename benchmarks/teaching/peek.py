"""A look at a teaching-model run while it trains: knowledge and causal trace of its last checkpoint.

    OMP_NUM_THREADS=1 python benchmarks/teaching/peek.py /tmp/candC

Loads `<run>/_checkpoint/` (written every few minutes by `editkit.teaching.train`) into the
run's model class and prints the step, the training seconds, `people_knowledge` over 200 facts
(top-1 / pairwise in the first, all train and the held-out phrasings) and `candidate.trace` over
<= 25 known facts. For stopping a run early that is going the wrong way; the numbers of a
finished model come from candidate.py.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_model
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from candidate import trace  # noqa: E402

from editkit.teaching.cases import people_of  # noqa: E402
from editkit.teaching.quality import people_knowledge  # noqa: E402
from editkit.teaching.train import config_from_state, make_model  # noqa: E402


def main(run: str) -> None:
    torch.set_num_threads(1)
    out = Path(run)
    ck = out / "_checkpoint"
    cfg, tok = config_from_state(ck), AutoTokenizer.from_pretrained(out)
    model = make_model(cfg, tok)
    load_model(model, str(ck / "model.safetensors"))
    model.eval()
    state = json.loads((ck / "state.json").read_text())["state"]
    people = people_of(out)
    known = people_knowledge(model, tok, people, n=200)
    print(json.dumps({"run": out.name, "step": state["step"], "train_seconds": round(state["train_seconds"]),
                      "known": {k: (v["top1"], v["pairwise"]) for k, v in known.items()}, "trace": trace(model, tok, people, n=25)}))


if __name__ == "__main__":
    main(sys.argv[1])
