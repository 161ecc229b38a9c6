"""The teaching model's own edit cases: CounterFact records about the invented facts it knows.

    python -m editkit.teaching.cases --model editkit/assets/editkit-teach [--tune 256]

    facts      every (person, relation, object) of the population the folder's splits.json
               describes (editkit.teaching.people, rebuilt from its seed and sizes)
    records    people.requests: ROME-layout CounterFact records, edit prompt = the relation's
               first train phrasing, paraphrases = its other train and its held-out phrasings,
               neighbours = other people with the same object of the same relation; in rounds
               of distinct subjects (each person's first fact, then each one's second, …)
    known      a record is kept when the model gives its true object a higher mean per-token
               log-probability than target_new after the edit prompt (editkit.scoring.compare)

Writes `<model>/cases/train.json` (the first `--tune` known records: where hyperparameters are
tuned) and `<model>/cases/val.json` (the other known records: where results are reported). As
round 2 repeats round 1's order of people, the first n − tune val records and the next `tune`
are about different people: a batch of up to n val records never edits one subject twice. The
data set names `editkit-teach:train` / `editkit-teach:val` read them (any `<model folder>:<split>`
does), and `editkit eval`, `trace`, `sweep`, `sequential` and the demo use them by default for a
model that ships them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..evaluation.datasets import CASES
from ..scoring import compare
from .people import People, requests

log = logging.getLogger(__name__)


def people_of(model_dir: Path) -> People:
    """The population a people-trained model folder was trained on (its splits.json)."""
    s = json.loads((Path(model_dir) / "splits.json").read_text())
    if s.get("kind") != "people":
        raise ValueError(f"{model_dir}/splits.json describes a {s.get('kind', 'counterfact')!r} corpus, not invented people")
    return People(seed=s["seed"], n=s["people"], attributes=s["attributes"], phrasings=len(s["relations"][0]["train"]),
                  name_pool=s.get("name_pool", 0))


def known_records(model, tok, records: list[dict], batch_size: int = 64) -> list[dict]:
    """The records whose true object the model prefers to target_new after the edit prompt."""
    rw = [r["requested_rewrite"] for r in records]
    ok = compare(model, tok, [w["prompt"].format(w["subject"]) for w in rw], [w["target_true"]["str"] for w in rw],
                 [w["target_new"]["str"] for w in rw], batch_size)
    return [r for r, k in zip(records, ok.tolist()) if k]


def make(model, tok, people: People, tune: int = 256, seed: int = 0) -> tuple[list[dict], list[dict], int]:
    """(train records, val records, facts): the known records of all the population's facts."""
    records = requests(people, len(people.facts), seed=seed)
    known = known_records(model, tok, records)
    if len(known) <= tune:
        raise ValueError(f"the model knows {len(known)} of {len(records)} facts: too few for {tune} tuning cases and a val split")
    return known[:tune], known[tune:], len(records)


def write(model, tok, model_dir: Path, tune: int = 256, seed: int = 0) -> dict:
    train, val, n = make(model, tok, people_of(model_dir), tune, seed)
    folder = Path(model_dir) / CASES
    folder.mkdir(exist_ok=True)
    for name, part in (("train", train), ("val", val)):
        (folder / f"{name}.json").write_text(json.dumps(part, indent=0) + "\n")
    out = {"facts": n, "known": len(train) + len(val), "train": len(train), "val": len(val)}
    log.info("cases: %s", out)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a model folder trained with --corpus people")
    ap.add_argument("--tune", type=int, default=256, help="known records in cases/train.json")
    ap.add_argument("--seed", type=int, default=0, help="order of the records and their target_new")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from ..models import load_model

    model, tok = load_model(a.model)
    print(json.dumps(write(model, tok, Path(a.model), a.tune, a.seed)))


if __name__ == "__main__":
    main()
