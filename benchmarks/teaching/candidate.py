"""Measure a teaching-model candidate trained on invented people (`--corpus people`) against the
goal of issue 10, and append one JSON line to benchmarks/teaching/candidates.jsonl:

    python -m editkit.teaching.train --corpus people --out /tmp/cand --minutes 36
    OMP_NUM_THREADS=1 python benchmarks/teaching/candidate.py --model /tmp/cand --out benchmarks/teaching/candidates.jsonl

  known       over 500 facts: top-1 accuracy of the object's first token, and the pairwise rate
              P(true) > P(another object of the relation), in the first train phrasing, in every
              train phrasing and in the held-out phrasings
  trace       editkit's causal trace (5 noise samples) over ≤ 50 known facts in the first train
              phrasing: the share of P(object) that restoring the last subject token's hidden state
              brings back per layer, and the MLP indirect effects at the last subject token and at
              the last token
  rome        ROME, b = 1, fact_token subject_last, at `--layer`, C0 over the training text
              (biographies and Wikipedia, 100,000 tokens): ES/PS/NS/S on `--n` requests of
              `people.requests` (each edit undone before the next), and NS unedited
  batch       with `--batch N`: MEMIT and EMMET + spread over `--spread` layers at b = N (`--batch-hparam`
              for their hyperparameters, e.g. the tuned λ) on max(N, `--n`) requests, in rounds of N
              distinct subjects (each round undone before the next)
  language    the final Wikipedia training loss (training.json) and the held-out Wikipedia NLL of
              64 chunks of 128 tokens from the end of the text (sequential.wiki_chunks), and per
              character of the last articles (`nats_per_char`: comparable across tokenizers), also
              for the shipped model (`--compare`), whose vocabulary differs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def trace(model, tok, people, n: int = 50) -> dict:
    from editkit.trace import CATEGORIES, LAST_SUBJECT, default_window, num_layers, trace_facts

    facts = [(people.train_phrasings(f.relation)[0], f.subject, f.object) for f in people.facts[:400]]
    s = trace_facts(model, tok, facts, kinds=["hidden", "mlp"], samples=5, window=default_window(num_layers(model)), max_known=n, progress=False)
    span = max(s.high - s.low, 1e-9)
    return {"traced": len(s.facts), "p_clean": round(s.high, 3), "p_corrupt": round(s.low, 3),
            "restore_last_subject_hidden": [round(float(x), 3) for x in s.effects["hidden"][LAST_SUBJECT] / span],
            "mlp_effect_last_subject": [round(float(x), 4) for x in s.effects["mlp"][LAST_SUBJECT]],
            "mlp_effect_last_token": [round(float(x), 4) for x in s.effects["mlp"][CATEGORIES.index("last token")]]}


def nats_per_char(model, tok, chars: int = 60_000) -> float:
    """Held-out Wikipedia NLL per character, comparable across tokenizers: the last articles of the
    text (about `chars` characters), each cut into 128-token pieces; the summed NLL of every token
    after a piece's first, over the characters those tokens spell."""
    from editkit.paths import data_dir
    from editkit.teaching.corpus import load_wikipedia
    from editkit.tokens import pieces

    total, n_chars = 0.0, 0
    with torch.no_grad():
        for doc in load_wikipedia(data_dir(), max_chars=chars, from_end=True):
            for piece in pieces(tok(doc, verbose=False)["input_ids"], 128, min_len=2):
                x = torch.tensor([piece])
                logp = model(input_ids=x).logits[:, :-1].float().log_softmax(-1)
                total += float(-logp.gather(-1, x[:, 1:, None]).sum())
                n_chars += len(tok.decode(piece[1:]))
    return total / n_chars


def stats_corpus(corpus, folder: Path) -> str:
    """The training text as a JSONL corpus: two passes of biographies packed 8 a document, then Wikipedia."""
    from editkit.jsonl import append_line

    path = folder / "train_text.jsonl"
    bios = corpus.documents(0) + corpus.documents(1)
    for s in range(0, len(bios), 8):
        append_line(path, {"text": "\n".join(bios[s : s + 8])})
    for d in corpus.wiki[:2000]:
        append_line(path, {"text": d})
    return str(path)


def edits(model, tok, reqs, objective: str, layers: list[int], batch: int, corpus_path: str, cache: str, **hparams) -> dict:
    from editkit import Editor
    from editkit.evaluation.counterfact import counterfact_rows, summarise

    kw = {"layers": layers, "corpus": corpus_path, "n_tokens": 100_000, "cache_dir": cache, "ridge": 1e-6, **hparams}  # ridge: dead MLP units
    if objective == "rome":
        editor = Editor("rome", **kw)
    else:
        editor = Editor(objective, strategy="spread", **kw)
    rows = []
    for s in range(0, len(reqs), batch):
        edit = editor.edit(model, tok, reqs[s : s + batch])
        rows += counterfact_rows(model, tok, reqs[s : s + batch])
        edit.undo()
    out = {k: round(v, 3) for k, v in summarise(rows).items() if k in ("efficacy_success", "paraphrase_success", "neighborhood_success", "score", "n")}
    return {"objective": objective, "layers": layers, "batch": batch, **hparams, **out}


def load_candidate(folder: Path):
    """A trained teaching-model folder's model (eval mode), tokenizer, training.json and corpus."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from editkit.paths import data_dir
    from editkit.teaching.train import TrainConfig, make_corpus

    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    training = json.loads((folder / "training.json").read_text())
    cfg = TrainConfig(**{k: v for k, v in training["config"].items() if k in TrainConfig.__dataclass_fields__ and k != "betas"})
    return model, tok, training, make_corpus(cfg, data_dir())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--layer", type=int, action="append", help="ROME layer(s) (default 0)")
    ap.add_argument("--n", type=int, default=50, help="ROME requests")
    ap.add_argument("--batch", type=int, default=0, help="also MEMIT/EMMET + spread at this batch size")
    ap.add_argument("--spread", default="0,1", help="layers for the batch edits")
    ap.add_argument("--compare", default=None, help="also the held-out Wikipedia NLL of this model (e.g. the shipped one)")
    ap.add_argument("--note", default="")
    ap.add_argument("--hparam", action="append", default=[], help="KEY=VALUE for every edit (e.g. steps=40); repeatable")
    ap.add_argument("--batch-hparam", action="append", default=[],
                    help="KEY=VALUE for the batch edits only, over --hparam (e.g. mom2_weight=100); repeatable")
    a = ap.parse_args(argv)

    from editkit.evaluation.counterfact import counterfact_rows, summarise
    from editkit.evaluation.datasets import Dataset
    from editkit.sequential import text_nll, wiki_chunks
    from editkit.teaching.people import requests
    from editkit.teaching.quality import people_knowledge

    t0 = time.time()
    torch.manual_seed(0)
    folder = Path(a.model)
    model, tok, training, corpus = load_candidate(folder)
    people = corpus.people
    keys = ("people", "attributes", "phrasings", "n_layer", "n_embd", "wiki_fraction", "minutes")
    rec = {"model": str(folder), "note": a.note,
           "config": {**{k: training["config"][k] for k in keys}, "mlp_width": model.config.n_inner or 4 * model.config.n_embd},
           "steps": training["steps"], "train_seconds": training["train_seconds"], "facts": len(people.facts),
           "final_fact_loss": training["final_fact_loss"], "final_wiki_loss": training["final_wiki_loss"]}
    rec["known"] = people_knowledge(model, tok, people)
    try:
        rec["trace"] = trace(model, tok, people)
    except ValueError as e:  # no fact known well enough to trace
        rec["trace"] = str(e)
    chunks = wiki_chunks(tok, 64, 128)
    rec["wiki_nll_held_out"] = round(text_nll(model, tok, chunks), 3)
    rec["wiki_nats_per_char"] = round(nats_per_char(model, tok), 4)
    if a.compare:
        from editkit.models import load_model

        other, otok = load_model(a.compare)
        rec["wiki_nll_held_out_compare"] = {a.compare: round(text_nll(other, otok, wiki_chunks(otok, 64, 128)), 3)}
        rec["wiki_nats_per_char_compare"] = {a.compare: round(nats_per_char(other, otok), 4)}
    reqs = Dataset("counterfact", "people", requests(people, max(a.n, a.batch), seed=1)).requests()
    rec["unedited"] = {k: round(v, 3) for k, v in summarise(counterfact_rows(model, tok, reqs[: a.n])).items()
                       if k in ("efficacy_success", "paraphrase_success", "neighborhood_success")}
    tmp = Path(tempfile.mkdtemp())
    text = stats_corpus(corpus, tmp)
    from editkit.cli import parse_pairs

    hp = parse_pairs(a.hparam)
    rec["rome"] = [edits(model, tok, reqs[: a.n], "rome", [layer], 1, text, str(tmp), **hp) for layer in (a.layer or [0])]
    if a.batch:
        spread = [int(x) for x in a.spread.split(",")]
        rec["batch"] = []
        for o in ("memit", "emmet"):
            try:
                rec["batch"].append(edits(model, tok, reqs[: max(a.batch, a.n)], o, spread, a.batch, text, str(tmp),
                                          **{**hp, **parse_pairs(a.batch_hparam)}))
            except ValueError as e:  # e.g. a singular EMMET system at this batch size: say so, keep the rest
                rec["batch"].append({"objective": o, "layers": spread, "batch": a.batch, "error": str(e)})
    rec["seconds"] = round(time.time() - t0, 1)
    rec["when"] = time.strftime("%Y-%m-%d %H:%M")
    from editkit.jsonl import emit

    emit(rec, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
