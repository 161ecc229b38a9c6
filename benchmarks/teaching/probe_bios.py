"""Probe for issue #10: does a small GPT-2 recall at the subject when every entity has several
attributes, told in biographies with a permuted sentence order (Allen-Zhu & Li 2023)?

    OMP_NUM_THREADS=1 python benchmarks/teaching/probe_bios.py --attributes 5 --minutes 12 --out benchmarks/teaching/probes.jsonl
    OMP_NUM_THREADS=1 python benchmarks/teaching/probe_bios.py --attributes 1 --minutes 12 --out benchmarks/teaching/probes.jsonl

Synthetic people (two-part invented names, several BPE tokens each) with `--attributes` of five
relations (birth city, language, occupation, instrument, employer), each relation in three
training phrasings and one held-out query phrasing. A training document is one person's
biography: one sentence per attribute, in a random order and phrasing, the full name in each.
A GPT-2 (4 layers, 128 wide, its own byte-level BPE) is trained for `--minutes` on one thread,
then measured:
  known        top-1 accuracy of the attribute after a training phrasing / the held-out phrasing
  trace        editkit's causal trace over ≤ 40 known facts, in the held-out and in a training
               phrasing: the fraction of P(object) that restoring the hidden state at the last
               subject token brings back per layer, and the MLP indirect effect at the last subject
               token vs the last token
Not editkit's teaching model: a probe of the data, with its numbers in probes.jsonl and
benchmarks/teaching/probes.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RELATIONS = {  # relation: (training phrasings, held-out query, objects)
    "city": (["{} was born in", "{} came into the world in", "The birthplace of {} is"], "{} is originally from",
             "Paris London Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin Oslo Athens Cairo Tokyo Lima Quito Delhi Seoul Sydney Toronto".split()),
    "language": (["{} speaks", "The mother tongue of {} is", "{} grew up speaking"], "The native language of {} is",
                 "French English German Spanish Italian Dutch Polish Greek Arabic Japanese Russian Swedish Finnish Turkish Korean".split()),
    "job": (["{} works as a", "By profession, {} is a", "{} earns a living as a"], "The occupation of {} is",
            "teacher lawyer doctor farmer pilot baker nurse painter singer writer dancer sailor soldier judge chemist".split()),
    "instrument": (["{} plays the", "The instrument of {} is the", "{} performs on the"], "The favourite instrument of {} is the",
                   "piano violin guitar cello flute trumpet drums harp organ clarinet".split()),
    "employer": (["{} is employed by", "{} works for", "The employer of {} is"], "The company of {} is",
                 "Google Microsoft Toyota Nokia Siemens Philips Nestle Shell Boeing Airbus Intel Sony Apple Amazon Fiat".split()),
}
EXTRA = {  # --extra-phrasings: five more training phrasings per invented relation, and a second held-out one
    "city": (["{} is a native of", "The hometown of {} is", "{} spent childhood in", "{} comes from the city of", "As a child, {} lived in"],
             "The city where {} was born is"),
    "language": (["{} talks in", "At home, {} speaks", "The first language of {} is", "{} is fluent in", "{} learned to talk in"],
                 "{} prefers to speak"),
    "job": (["{} is employed as a", "{} trained as a", "The job of {} is", "{} has worked as a", "For a living, {} is a"], "{} is known as a"),
    "instrument": (["{} practises the", "{} is a player of the", "{} learned to play the", "On stage, {} plays the", "{} owns a"],
                   "The instrument {} plays is the"),
    "employer": (["{} has a job at", "{} is on the staff of", "The company {} works for is", "{} joined", "{} earns a salary from"],
                 "The firm that employs {} is"),
}
SYLLABLES = "ka ro mi te lu sa vo ne di pa zu re ko ba fi go hu ja le mo nu pi qu si to vu wa xe yo ze".split()


def use_counterfact_relations(n: int, seed: int = 0) -> list[str]:
    """Replace the invented relations by CounterFact's n largest recovered relations (as the
    teaching corpus recovers them): their train phrasings, one held-out phrasing as the query (the
    last train one when none is held out), and the objects of their facts with repetition (the
    real object prior)."""
    from editkit.paths import data_dir
    from editkit.teaching.corpus import DEFAULT_FACT_CASES, build_corpus

    corpus = build_corpus(data_dir(), seed=seed, wiki_chars=0, fact_cases=DEFAULT_FACT_CASES)
    RELATIONS.clear()
    for rel in sorted(corpus.relations, key=lambda r: -r.n_cases)[:n]:
        split = corpus.splits[rel.id]
        objects = [f.object for f in corpus.facts if f.relation == rel.id]
        if objects:
            RELATIONS[rel.id] = (split["train"], (split["held_out"] or split["train"][-1:])[0], objects)
    return list(RELATIONS)


def people(n: int, k: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    names, out = set(), []
    while len(names) < n:
        first = "".join(rnd.choice(SYLLABLES) for _ in range(2)).capitalize()
        last = "".join(rnd.choice(SYLLABLES) for _ in range(3)).capitalize()
        names.add(f"{first} {last}")
    rels = [r for r in RELATIONS if not r.startswith("cf:")]  # the invented relations
    for name in sorted(names):
        chosen = rels[:k] if k == len(rels) else rnd.sample(rels, k)
        out.append({"name": name, "facts": {r: rnd.choice(RELATIONS[r][2]) for r in chosen}})
    return out


def counterfact_people(n: int, uniform_objects: bool = False, seed: int = 0) -> list[dict]:
    """The first n CounterFact train cases as one-fact "people": the real subject, the case's own
    prompt template as the relation (one phrasing, also the query), its true object, or with
    `uniform_objects` an object drawn uniformly from the objects of cases with the same prompt
    template (so the prompt alone no longer predicts it)."""
    from editkit.evaluation import load
    from editkit.tokens import template_of

    out, seen = [], set()
    for r in load("counterfact:train").records:
        if r["subject"] in seen or "{}" in r["subject"]:
            continue
        seen.add(r["subject"])
        if r["subject"] not in r["prompt"]:
            continue
        template = template_of(r["prompt"], r["subject"])  # "{}, which is located in": shared by the relation's cases
        rel = "cf:" + template
        RELATIONS.setdefault(rel, ([template], template, []))
        out.append({"name": r["subject"], "facts": {rel: r["ground_truth"]}})
        if len(out) == n:
            break
    if uniform_objects:
        rnd = random.Random(seed)
        pool: dict[str, list[str]] = {}
        for p in out:
            for r, o in p["facts"].items():
                pool.setdefault(r, []).append(o)
        choices = {r: sorted(set(os)) for r, os in pool.items()}
        for p in out:
            p["facts"] = {r: rnd.choice(choices[r]) for r in p["facts"]}
    return out


def biography(p: dict, rnd: random.Random) -> str:
    facts = list(p["facts"].items())
    rnd.shuffle(facts)  # permuted sentence order
    return " ".join(rnd.choice(RELATIONS[r][0]).format(p["name"]) + f" {o}." for r, o in facts)


def rome_check(model, tok, pop, rnd, a) -> dict:
    """ROME at b = 1 (subject_last, layer `--rome-layer`, C0 over 20,000 biographies) on `--rome`
    facts the model knows in its first training phrasing. ES: P(new) > P(true) on that prompt;
    PS: the same in every other training phrasing; NS: up to 5 other people with the same
    object of the same relation keep P(true) > P(new), against the unedited rate. Each edit is
    undone before the next."""
    import tempfile

    from editkit import Editor, EditRequest
    from editkit.jsonl import append_line as put
    from editkit.scoring import target_logprob

    def prefers(prompts, good, bad):
        return (target_logprob(model, tok, prompts, good) > target_logprob(model, tok, prompts, bad)).float()

    folder = Path(tempfile.mkdtemp())
    for _ in range(20000):
        put(folder / "bios.jsonl", {"text": biography(rnd.choice(pop), rnd)})
    editor = Editor("rome", layers=[a.rome_layer], corpus=str(folder / "bios.jsonl"), n_tokens=100_000, cache_dir=str(folder))
    by_fact: dict = {}
    for p in pop:
        for r, o in p["facts"].items():
            by_fact.setdefault((r, o), []).append(p["name"])
    cases = [(p, r, o) for p in pop for r, o in p["facts"].items()]
    rnd.shuffle(cases)
    es, ps, ns, ns0, done = [], [], [], [], 0
    for p, r, o in cases:
        if done == a.rome:
            break
        train = RELATIONS[r][0]
        new = rnd.choice(sorted({x for x in RELATIONS[r][2] if x != o}))
        if not prefers([train[0].format(p["name"])], [o], [new])[0]:
            continue  # not known
        others = [n for n in by_fact[(r, o)] if n != p["name"]][:5]
        nb = [train[0].format(n) for n in others]
        para = [t.format(p["name"]) for t in train[1:]]
        before = prefers(nb, [o] * len(nb), [new] * len(nb)) if nb else None
        edit = editor.edit(model, tok, [EditRequest(prompt=train[0], subject=p["name"], target_new=new, target_true=o)])
        es.append(float(prefers([train[0].format(p["name"])], [new], [o])[0]))
        if para:
            ps.append(float(prefers(para, [new] * len(para), [o] * len(para)).mean()))
        if nb:
            ns.append(float(prefers(nb, [o] * len(nb), [new] * len(nb)).mean()))
            ns0.append(float(before.mean()))
        edit.undo()
        done += 1
    mean = lambda v: round(sum(v) / max(len(v), 1), 3)  # noqa: E731
    return {"layer": a.rome_layer, "edits": done, "ES": mean(es), "PS": mean(ps), "NS": mean(ns), "NS_unedited": mean(ns0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--attributes", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=12)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--save", default=None, help="keep the probe model here (save_pretrained)")
    ap.add_argument("--counterfact", action="store_true", help="real CounterFact subjects, prompts and objects (one fact each) instead of invented people")
    ap.add_argument("--uniform-objects", action="store_true", help="with --counterfact: objects drawn uniformly among those of the same prompt")
    ap.add_argument("--mix-invented", type=int, default=0, help="with --counterfact: also train on this many invented 5-attribute people")
    ap.add_argument("--invented-names", action="store_true", help="with --counterfact: each real subject renamed with an invented name")
    ap.add_argument("--cf-relations", type=int, default=0,
                    help="invented people whose attributes come from CounterFact's N largest relations, in all their train phrasings, with their objects")
    ap.add_argument("--phrasings", type=int, default=0, help="with --cf-relations: keep only each relation's first K train phrasings (its most used)")
    ap.add_argument("--unshared", action="store_true", help="with --cf-relations: drop every train phrasing that another of the chosen relations also has")
    ap.add_argument("--extra-phrasings", action="store_true", help="invented relations with 8 training phrasings each, not 3 (and another held-out query)")
    ap.add_argument("--rome", type=int, default=0, help="then edit this many known facts with ROME (b = 1, subject_last) and report ES/PS/NS")
    ap.add_argument("--rome-layer", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.1, help="resid/embedding/attention dropout (GPT2Config's default 0.1, as in every earlier probe)")
    a = ap.parse_args(argv)
    from transformers import GPT2Config, GPT2LMHeadModel

    from editkit.jsonl import emit
    from editkit.teaching.corpus import train_bpe
    from editkit.trace import CATEGORIES, LAST_SUBJECT, default_window, trace_facts

    torch.manual_seed(a.seed)
    rnd = random.Random(a.seed)
    if a.extra_phrasings:
        for r, (more, query) in EXTRA.items():
            train, _, objects = RELATIONS[r]
            RELATIONS[r] = (train + more, query, objects)
    if a.cf_relations:
        use_counterfact_relations(a.cf_relations, a.seed)
        if a.unshared:
            count: dict[str, int] = {}
            for train, _, _ in RELATIONS.values():
                for t in set(train):
                    count[t] = count.get(t, 0) + 1
            for r, (train, query, objects) in list(RELATIONS.items()):
                RELATIONS[r] = ([t for t in train if count[t] == 1], query, objects)
        if a.phrasings:
            for r, (train, query, objects) in list(RELATIONS.items()):
                RELATIONS[r] = (train[: a.phrasings], query, objects)
    pop = counterfact_people(a.people, a.uniform_objects, a.seed) if a.counterfact else people(a.people, a.attributes, a.seed)
    if a.counterfact and a.invented_names:
        for p, q in zip(pop, people(len(pop), 1, a.seed + 2)):
            p["name"] = q["name"]
    traced_pop = pop  # the facts measured (the real ones when invented people are mixed in)
    if a.mix_invented:
        pop = pop + people(a.mix_invented, 5, a.seed + 1)
    tok = train_bpe((biography(p, rnd) for p in pop * 3), vocab_size=2048)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=a.width, n_layer=a.layers, n_head=4,
                                       resid_pdrop=a.dropout, embd_pdrop=a.dropout, attn_pdrop=a.dropout,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, betas=(0.9, 0.95))
    t0, step, losses = time.time(), 0, []
    model.train()
    while time.time() - t0 < a.minutes * 60:
        docs = [biography(rnd.choice(pop), rnd) for _ in range(16)]
        enc = tok(docs, return_tensors="pt", padding=True, truncation=True, max_length=128)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        lr = 3e-3 * min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
    model.eval()

    def known(template_of, n=400):
        hits = 0
        sample = [(p, r, o) for p in pop[:n] for r, o in p["facts"].items()]
        for p, r, o in sample:
            ids = tok(template_of(r).format(p["name"]), return_tensors="pt")["input_ids"]
            with torch.no_grad():
                top = int(model(input_ids=ids).logits[0, -1].argmax())
            hits += top == tok(" " + o)["input_ids"][0]
        return hits / len(sample)

    invented = f"invented, CounterFact's {a.cf_relations} largest relations" if a.cf_relations else "invented"
    if a.extra_phrasings:
        invented += ", 8 phrasings per relation"
    if a.cf_relations and a.unshared:
        invented += ", no phrasing shared between relations"
    if a.cf_relations and a.phrasings:
        invented += f", {a.phrasings} phrasings each"
    if a.dropout != 0.1:
        invented += f", dropout {a.dropout}"
    rec = {"data": ("counterfact" + (" uniform objects" if a.uniform_objects else "") + (" invented names" if a.invented_names else "")
                    + (f" + {a.mix_invented} invented" if a.mix_invented else ""))
           if a.counterfact else invented, "attributes": 1 if a.counterfact else a.attributes,
           "people": a.people, "layers": a.layers, "width": a.width, "minutes": a.minutes, "steps": step,
           "final_loss": round(sum(losses[-50:]) / max(len(losses[-50:]), 1), 4),
           "known_train_phrasing": round(known(lambda r: RELATIONS[r][0][0]), 3), "known_held_out_phrasing": round(known(lambda r: RELATIONS[r][1]), 3)}
    w = default_window(a.layers)
    for name, phrasing in (("held_out", lambda r: RELATIONS[r][1]), ("train", lambda r: RELATIONS[r][0][0])):
        facts = [(phrasing(r), p["name"], o) for p in traced_pop for r, o in p["facts"].items()][:400]
        try:
            s = trace_facts(model, tok, facts, kinds=["hidden", "mlp"], samples=5, window=w, max_known=40, progress=False)
        except ValueError:  # none known in this phrasing
            rec[f"trace_{name}"] = None
            continue
        span = max(s.high - s.low, 1e-9)
        rec[f"trace_{name}"] = {
            "traced": len(s.facts), "p_clean": round(s.high, 3), "p_corrupt": round(s.low, 3),
            "restore_last_subject_hidden": [round(float(x), 3) for x in s.effects["hidden"][LAST_SUBJECT] / span],
            "mlp_effect_last_subject": [round(float(x), 4) for x in s.effects["mlp"][LAST_SUBJECT]],
            "mlp_effect_last_token": [round(float(x), 4) for x in s.effects["mlp"][CATEGORIES.index("last token")]],
        }
    if a.rome:
        rec["rome"] = rome_check(model, tok, pop, rnd, a)
    if a.save:
        model.save_pretrained(a.save)
        tok.save_pretrained(a.save)
    emit(rec, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
