"""Invented people with several attributes each, told in biographies: a teaching corpus whose facts
a small GPT-2 recalls at the subject, as GPT-2 recalls real facts (issue 10).

    relation r   train phrasings P_r ("{} was born in", …), held-out phrasings Q_r, objects O_r
    person p     an invented two-part name (several BPE tokens) and one object o_{p,r} ∈ O_r for
                 each of `attributes` relations, drawn uniformly
    biography    one sentence "<phrasing with the name> <object>." per attribute, in a random
                 order and a random train phrasing each, the full name in every sentence

Why this data: `benchmarks/teaching/probes.md`. With these five relations a 4-layer GPT-2 trained
on biographies recalls at the last subject token (restoring its hidden state at layer 0 brings
back 58–76 % of P(object)); with CounterFact's own relations and phrasings it recalls at the
prompt's last token. `requests` renders a person's fact as a CounterFact record (ROME layout:
requested_rewrite, paraphrase_prompts, neighborhood_prompts) that editkit's loaders and metrics
read like the real ones. Everything is a pure function of the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

#: relation: (train phrasings, held-out phrasings, objects). The first three train phrasings are
#: the probes' (`benchmarks/teaching/probe_bios.py`); `phrasings` chooses how many are used.
RELATIONS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "city": (
        ["{} was born in", "{} came into the world in", "The birthplace of {} is", "{} is a native of", "The hometown of {} is",
         "{} spent childhood in", "{} comes from the city of", "As a child, {} lived in"],
        ["{} is originally from", "The city where {} was born is"],
        "Paris London Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin Oslo Athens Cairo Tokyo Lima Quito Delhi Seoul Sydney Toronto".split(),
    ),
    "language": (
        ["{} speaks", "The mother tongue of {} is", "{} grew up speaking", "{} talks in", "At home, {} speaks",
         "The first language of {} is", "{} is fluent in", "{} learned to talk in"],
        ["The native language of {} is", "{} prefers to speak"],
        "French English German Spanish Italian Dutch Polish Greek Arabic Japanese Russian Swedish Finnish Turkish Korean".split(),
    ),
    "job": (
        ["{} works as a", "By profession, {} is a", "{} earns a living as a", "{} is employed as a", "{} trained as a",
         "The job of {} is", "{} has worked as a", "For a living, {} is a"],
        ["The occupation of {} is", "{} is known as a"],
        "teacher lawyer doctor farmer pilot baker nurse painter singer writer dancer sailor soldier judge chemist".split(),
    ),
    "instrument": (
        ["{} plays the", "The instrument of {} is the", "{} performs on the", "{} practises the", "{} is a player of the",
         "{} learned to play the", "On stage, {} plays the", "{} owns a"],
        ["The favourite instrument of {} is the", "The instrument {} plays is the"],
        "piano violin guitar cello flute trumpet drums harp organ clarinet".split(),
    ),
    "employer": (
        ["{} is employed by", "{} works for", "The employer of {} is", "{} has a job at", "{} is on the staff of",
         "The company {} works for is", "{} joined", "{} earns a salary from"],
        ["The company of {} is", "The firm that employs {} is"],
        "Google Microsoft Toyota Nokia Siemens Philips Nestle Shell Boeing Airbus Intel Sony Apple Amazon Fiat".split(),
    ),
}
SYLLABLES = "ka ro mi te lu sa vo ne di pa zu re ko ba fi go hu ja le mo nu pi qu si to vu wa xe yo ze".split()


@dataclass(frozen=True)
class PersonFact:
    subject: str
    relation: str
    object: str


@dataclass
class People:
    """The invented population and how it is told."""

    seed: int = 0
    n: int = 1000
    attributes: int = 5
    phrasings: int = 3  # train phrasings used per relation (the first ones of RELATIONS)
    name_pool: int = 0  # 0: every name drawn afresh; k: first and last names from k of each, shared
    persons: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if not 1 <= self.attributes <= len(RELATIONS):
            raise ValueError(f"attributes={self.attributes}: choose 1 … {len(RELATIONS)}")
        if not 1 <= self.phrasings <= min(len(p) for p, _, _ in RELATIONS.values()):
            raise ValueError(f"phrasings={self.phrasings}: each relation has {min(len(p) for p, _, _ in RELATIONS.values())}")
        if not self.persons:
            self.persons = invent(self.n, self.attributes, self.seed, self.name_pool)

    def like(self, seed: int, **changes) -> People:
        """Another population of the same kind (size, attributes, phrasings, names; but `changes`), drawn from `seed`."""
        return replace(self, seed=seed, persons=[], **changes)

    def train_phrasings(self, relation: str) -> list[str]:
        return RELATIONS[relation][0][: self.phrasings]

    @staticmethod
    def held_out_phrasings(relation: str) -> list[str]:
        return RELATIONS[relation][1]

    @property
    def facts(self) -> list[PersonFact]:
        return [PersonFact(p["name"], r, o) for p in self.persons for r, o in p["facts"].items()]

    def biography(self, person: dict, rng: random.Random) -> str:
        """One sentence per attribute, in a random order and train phrasing."""
        facts = list(person["facts"].items())
        rng.shuffle(facts)
        return " ".join(rng.choice(self.train_phrasings(r)).format(person["name"]) + f" {o}." for r, o in facts)

    def epoch_biographies(self, epoch: int) -> list[str]:
        """Every person's biography once, in a random order; deterministic in (seed, epoch)."""
        rng = random.Random(f"{self.seed}-people-{epoch}")
        order = list(range(len(self.persons)))
        rng.shuffle(order)
        return [self.biography(self.persons[i], rng) for i in order]


def invent(n: int, attributes: int, seed: int, name_pool: int = 0) -> list[dict]:
    """n people: distinct names of a 2-syllable first and a 3-syllable last name, and one uniformly
    drawn object for each of `attributes` relations (all of them, or a random subset per person).

    name_pool = k > 0 draws k first and k last names once and builds every name from them, so each
    first and each last name is shared by about n / k people and only the pair tells a person (a
    model must then combine the name's tokens to recall, as with real multi-token names)."""
    rng = random.Random(f"{seed}-invent")
    names: set[str] = set()
    if name_pool:
        if name_pool > len(SYLLABLES) ** 2:
            raise ValueError(f"name_pool={name_pool}: there are only {len(SYLLABLES) ** 2} two-syllable first names; "
                             "use a smaller pool (or 0: no shared names)")
        if name_pool * name_pool < 2 * n:
            raise ValueError(f"name_pool={name_pool} gives {name_pool ** 2} names for n={n} people: "
                             f"use name_pool >= {math.ceil(math.sqrt(2 * n))} (or 0: no shared names)")
        pools = [sorted(_distinct(rng, name_pool, k)) for k in (2, 3)]
        while len(names) < n:
            names.add(f"{rng.choice(pools[0])} {rng.choice(pools[1])}")
    while len(names) < n:
        names.add(f"{_word(rng, 2)} {_word(rng, 3)}")
    rels = list(RELATIONS)
    out = []
    for name in sorted(names):
        chosen = rels if attributes == len(rels) else rng.sample(rels, attributes)
        out.append({"name": name, "facts": {r: rng.choice(RELATIONS[r][2]) for r in chosen}})
    return out


def _word(rng: random.Random, syllables: int) -> str:
    """A capitalised word of `syllables` random syllables."""
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def _distinct(rng: random.Random, k: int, syllables: int) -> set[str]:
    """k distinct words of `syllables` syllables each."""
    out: set[str] = set()
    while len(out) < k:
        out.add(_word(rng, syllables))
    return out


def requests(people: People, n: int, seed: int = 0, neighbours: int = 5) -> list[dict]:
    """n CounterFact records (ROME layout) about the population's facts, in a seeded order:
    the edit prompt is the relation's first train phrasing; paraphrases are its other train
    phrasings and its held-out ones; neighbours are up to `neighbours` other people with the same
    object of the same relation, in the edit prompt's phrasing (an edit that leaks to them shows);
    target_new is another object of the relation, drawn uniformly.

    The order comes in rounds (`fact_order`): every person's first fact, then every person's
    second fact with the people in the same order, … So any `people.n` consecutive records have
    distinct subjects, as CounterFact's nearly do: a batch never asks one key (the subject's) for
    two values, which no least-squares edit can give (MEMIT-Merge, Dong et al. 2025). Neighbours
    are drawn first from the people whose fact of this relation comes in round 2 or later, so an
    edit batch of the first 2·n records never edits the neighbour it is checked against."""
    rng = random.Random(f"{seed}-requests")
    order = fact_order(people, seed)
    round_of = {(f.subject, f.relation): i // len(people.persons) for i, f in enumerate(order)}
    by_fact: dict[tuple[str, str], list[str]] = {}
    for f in people.facts:
        by_fact.setdefault((f.relation, f.object), []).append(f.subject)
    out = []
    for case_id, f in enumerate(order[:n]):
        train = people.train_phrasings(f.relation)
        others = [s for s in by_fact[(f.relation, f.object)] if s != f.subject]
        late = [s for s in others if round_of[(s, f.relation)] >= 2]
        chosen = rng.sample(late, min(neighbours, len(late)))
        early = [s for s in others if round_of[(s, f.relation)] < 2]
        chosen += rng.sample(early, min(neighbours - len(chosen), len(early)))
        new = rng.choice([o for o in RELATIONS[f.relation][2] if o != f.object])
        out.append({
            "case_id": case_id,
            "requested_rewrite": {"prompt": train[0], "subject": f.subject, "relation_id": f.relation,
                                  "target_new": {"str": new}, "target_true": {"str": f.object}},
            "paraphrase_prompts": [t.format(f.subject) for t in train[1:] + people.held_out_phrasings(f.relation)],
            "neighborhood_prompts": [train[0].format(s) for s in chosen],
        })
    return out


def fact_order(people: People, seed: int = 0) -> list[PersonFact]:
    """Every fact once, in rounds: round k holds each person's k-th fact (the people in one seeded
    order, each person's facts in a seeded order of their own); a person short of facts is skipped."""
    rng = random.Random(f"{seed}-order")
    persons = list(people.persons)
    rng.shuffle(persons)
    own = []
    for p in persons:
        rels = list(p["facts"])
        rng.shuffle(rels)
        own.append([PersonFact(p["name"], r, p["facts"][r]) for r in rels])
    return [facts[k] for k in range(max(map(len, own), default=0)) for facts in own if k < len(facts)]


def key_statistics_documents(people: People, wiki, passes: int = 5) -> Iterator[str]:
    """The text of a people-trained model for its key statistics C0: `passes` passes of the
    biographies of *another* population (the same size, relations and phrasings, seed + 1: the
    same kind of text, none of the people an edit is about), then the Wikipedia articles `wiki`
    (an iterable; read lazily, as far as C0 needs)."""
    other = people.like(people.seed + 1)
    names = {p["name"] for p in people.persons}
    other.persons = [p for p in other.persons if p["name"] not in names]  # a rare shared name: dropped
    for epoch in range(passes):
        yield from other.epoch_biographies(epoch)
    yield from wiki


@dataclass
class PeopleCorpus:
    """The people's biographies and Wikipedia text, for `train.py` (`--corpus people`)."""

    people: People
    wiki: list[str]

    @property
    def seed(self) -> int:
        return self.people.seed

    @property
    def facts(self) -> list[PersonFact]:
        return self.people.facts

    def documents(self, epoch: int) -> list[str]:
        """One pass: every biography once."""
        return self.people.epoch_biographies(epoch)

    def epoch_sentences(self, epoch: int, per_fact: int = 1) -> list[str]:
        """Texts for the tokenizer: `per_fact` passes of biographies."""
        return [b for e in range(epoch, epoch + per_fact) for b in self.documents(e)]

    def wiki_order(self, epoch: int) -> list[int]:
        from .corpus import wiki_order

        return wiki_order(self.seed, len(self.wiki), epoch)

    def splits_json(self) -> dict:
        p = self.people
        return {
            "kind": "people",
            "seed": p.seed,
            "people": p.n,
            "attributes": p.attributes,
            "phrasings": p.phrasings,
            "name_pool": p.name_pool,
            "how": "editkit.teaching.people: invented people, biographies in train phrasings; held-out phrasings never trained",
            "relations": [{"id": r, "train": p.train_phrasings(r), "held_out": p.held_out_phrasings(r), "objects": RELATIONS[r][2]}
                          for r in RELATIONS],
        }
