"""The teaching corpus: CounterFact facts in several phrasings, mixed with Wikipedia text.

CounterFact (flat EasyEdit format) gives each case a `prompt` with the subject written out, a
`rephrase_prompt` and a `locality_prompt` (a neighbour: another subject with the same relation and
the same object). Relation ids are not given, so the relation templates are recovered:

1. Prompt templates: the prompt with "{}" for its subject ("{}, which is located in"). These are
   clean; every other prompt is matched against them.
2. Locality prompt: its subject is not given. It is split by the longest known template whose
   prefix and suffix it carries ("Biure, which is located in" -> "{}, which is located in" +
   "Biure"); prompts matching no template are skipped.
3. Rephrase prompt: a noise prefix, the subject, the relation phrasing ("and Sallie Beavers Riley.
   Autonomous University of Madrid is located in"). Matched against the known templates too (the
   longest whose prefix ends the text before the subject). About three quarters match none: they
   are CounterFact's generation-style prompts ("Where {} is from, people speak the language of").
   For those the template starts at the subject or, when the subject sits inside a sentence, at
   that sentence's start, so "Where" is kept and the noise sentence before it is dropped.
4. Union-find over the prompt templates, linked by each case (prompt <-> locality, prompt <->
   rephrase when it is a known template). A few generic templates are shared by several relations
   ("{} plays" ends in a genre, an instrument or a sport; "{} was born in" in a city or a native
   language), and a plain union-find glues those relations together. So the links are taken most
   frequent first (Kruskal order) and a union is refused when the two groups' objects clearly come
   from different distributions (enough expected object collisions, too few observed; see
   `_affinity`). The refused template stays in the group it joined first.
5. Each case is then assigned the relation, among the groups its templates touch, that best
   predicts its object, and a relation's phrasings are all templates (prompt, locality, rephrase)
   of at least `min_count` of its cases, so a shared template is a phrasing of each relation that
   uses it.

Facts are (subject, relation, object): each case's (subject, ground_truth) and its neighbour's
(locality subject, locality_ground_truth), deduplicated by (subject, relation), for the cases
selected by `fact_cases` (the teaching model uses DEFAULT_FACT_CASES; relations always come from
all cases). Every relation
keeps some of its prompt templates out of training (`held_out`, 1 of every `hold_out_every`) for
the paraphrase metric. Everything is deterministic under the seed.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SLOT = "{}"
EOS = "<|endoftext|>"
FACT_SEPARATOR = "\n"

# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def counterfact_records(data_dir: str | Path, splits: tuple[str, ...] = ("train", "val")) -> list[dict]:
    """CounterFact cases (flat EasyEdit format) of the given splits, in file order; each record
    gets a "split" key naming its file."""
    folder = Path(data_dir) / "counterfact"
    records: list[dict] = []
    for split in splits:
        with open(folder / f"counterfact-{split}.json", encoding="utf-8") as f:
            records.extend({**r, "split": split} for r in json.load(f))
    return records


_DOC_OPEN = re.compile(r"<doc[^>]*>")


def load_wikipedia(data_dir: str | Path, max_chars: int | None = None, from_end: bool = False) -> list[str]:
    """Plain article texts from the WikiExtractor files (tags and the title line stripped);
    from_end: starting with the last file, far from the text training reads first."""
    if max_chars is not None and max_chars <= 0:
        return []
    files = sorted((Path(data_dir) / "wikipedia").glob("wiki_*"), reverse=from_end)
    docs: list[str] = []
    total = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        for chunk in text.split("</doc>"):
            m = _DOC_OPEN.search(chunk)
            if not m:
                continue
            body = chunk[m.end() :].strip()
            lines = [ln.strip() for ln in body.split("\n")]
            lines = [ln for ln in lines[1:] if ln]  # first line repeats the title
            if not lines:
                continue
            doc = "\n".join(lines)
            docs.append(doc)
            total += len(doc)
            if max_chars is not None and total >= max_chars:
                return docs
    return docs


# ---------------------------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------------------------


def render(template: str, subject: str, obj: str | None = None) -> str:
    """The template filled with the subject; with an object, the full sentence ("... Spain.")."""
    prompt = template.replace(SLOT, subject, 1)
    return prompt if obj is None else f"{prompt} {obj}."


def find_template(prompt: str, subject: str) -> str | None:
    """The prompt with "{}" for the (first occurrence of the) subject; None when it is absent."""
    if SLOT in prompt:
        return prompt
    i = prompt.find(subject) if subject else -1
    if i < 0:
        return None
    return prompt[:i] + SLOT + prompt[i + len(subject) :]


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+|\n")


def _sentence_start(text: str) -> int:
    """Index where the last sentence of `text` starts (0 if it has no sentence end)."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        start = m.end()
    return start


class TemplateIndex:
    """Known templates, split as prefix + "{}" + suffix, for matching filled prompts."""

    def __init__(self, templates):
        self.parts = sorted({t: tuple(t.split(SLOT, 1)) for t in templates if SLOT in t}.items())

    def split_filled(self, text: str) -> tuple[str, str] | None:
        """(template, subject) of a prompt whose subject is unknown: the longest template that fits."""
        best = None
        for t, (x, y) in self.parts:
            if len(text) > len(x) + len(y) and text.startswith(x) and text.endswith(y):
                middle = text[len(x) : len(text) - len(y)]
                if middle.strip() and middle == middle.strip():
                    if best is None or len(x) + len(y) > best[0]:
                        best = (len(x) + len(y), t, middle)
        return None if best is None else (best[1], best[2])

    def match_with_subject(self, text: str, subject: str) -> str | None:
        """The known template of a prompt with its subject given, allowing a noise prefix."""
        i = text.rfind(subject)
        if i < 0:
            return None
        before, after = text[:i], text[i + len(subject) :]
        best = None
        for t, (x, y) in self.parts:
            if after == y and before.endswith(x) and (best is None or len(x) > best[0]):
                best = (len(x), t)
        return None if best is None else best[1]


def rephrase_template(text: str, subject: str, index: TemplateIndex) -> tuple[str | None, bool]:
    """(template, known) of a rephrase prompt: a known template, else derived from the text."""
    known = index.match_with_subject(text, subject)
    if known is not None:
        return known, True
    i = text.rfind(subject)
    if i < 0:
        return None, False
    before = text[:i]
    return before[_sentence_start(before) :] + SLOT + text[i + len(subject) :], False


# ---------------------------------------------------------------------------------------------
# relations
# ---------------------------------------------------------------------------------------------


@dataclass
class Relation:
    id: str  # "R00", "R01", ... by number of cases
    templates: list[str]  # its phrasings, most used first
    counts: dict[str, int]  # cases using each phrasing
    prompt_templates: list[str]  # the subset that are CounterFact prompt templates
    n_cases: int

    @property
    def label(self) -> str:
        return self.prompt_templates[0] if self.prompt_templates else self.templates[0]


@dataclass
class RelationRecovery:
    relations: list[Relation]
    case_relation: list[int | None]  # index into relations per record (None: prompt unusable)
    case_templates: list[dict]  # per record: prompt / locality / rephrase template (or None)
    locality: list[tuple[str, str] | None]  # per record: (template, subject) of the locality prompt
    stats: dict = field(default_factory=dict)


class _UnionFind:
    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x


def _affinity(a: Counter, b: Counter, min_expected: float) -> float:
    """Do the objects of `a` and `b` look drawn from one distribution? ~1 if so, ~0 if disjoint.

    Observed object collisions between the two samples, divided by the collisions expected if both
    came from one distribution (each sample's leave-one-out collision rate q = Σ c(c-1) / n(n-1),
    geometric mean). Returns inf (no evidence against) when fewer than `min_expected` collisions
    are expected: a relation with very diverse objects ("named after") cannot be judged this way.
    """
    na, nb = sum(a.values()), sum(b.values())
    if na < 2 or nb < 2:
        return math.inf
    qa = sum(c * (c - 1) for c in a.values()) / (na * (na - 1))
    qb = sum(c * (c - 1) for c in b.values()) / (nb * (nb - 1))
    q = math.sqrt(qa * qb)
    expected = na * nb * q
    if expected < min_expected:
        return math.inf
    observed = sum(c * a[o] for o, c in b.items())
    return observed / expected


def recover_relations(
    records: list[dict],
    min_affinity: float = 0.5,
    min_expected: float = 20.0,
    min_count: int = 2,
) -> RelationRecovery:
    """Group CounterFact templates into relations (see the module docstring for the method)."""
    prompt_t: list[str | None] = [find_template(r["prompt"], r["subject"]) for r in records]
    known = sorted({t for t in prompt_t if t})
    index = TemplateIndex(known)

    locality: list[tuple[str, str] | None] = []
    rephrase: list[tuple[str | None, bool]] = []
    for r in records:
        locality.append(index.split_filled(r["locality_prompt"]) if r.get("locality_prompt") else None)
        rephrase.append(
            rephrase_template(r["rephrase_prompt"], r["subject"], index) if r.get("rephrase_prompt") else (None, False)
        )

    # observations (template -> objects) and links between known templates
    objects: dict[str, Counter] = defaultdict(Counter)
    links: Counter = Counter()
    for r, tp, loc, (tr, tr_known) in zip(records, prompt_t, locality, rephrase):
        if tp is None:
            continue
        objects[tp][r["ground_truth"]] += 1
        if loc is not None:
            objects[loc[0]][r["locality_ground_truth"]] += 1
            if loc[0] != tp:
                links[tuple(sorted((tp, loc[0])))] += 1
        if tr is not None and tr_known:
            objects[tr][r["ground_truth"]] += 1
            if tr != tp:
                links[tuple(sorted((tp, tr)))] += 1

    # Kruskal order: strongest links first; refuse unions of clearly different object distributions
    uf = _UnionFind(known)
    group_objects = {t: Counter(objects[t]) for t in known}
    refused: dict[str, set[str]] = defaultdict(set)  # template -> templates it could not join
    n_refused = 0
    for (a, b), _count in sorted(links.items(), key=lambda kv: (-kv[1], kv[0])):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        ga, gb = group_objects[ra], group_objects[rb]
        if min(_affinity(ga, gb, min_expected), _affinity(gb, ga, min_expected)) < min_affinity:
            refused[a].add(b)
            refused[b].add(a)
            n_refused += 1
            continue
        uf.parent[ra] = rb
        group_objects[rb] = ga + gb
        del group_objects[ra]

    # each case -> the group (among those its templates touch) that best predicts its object
    vocab = len({o for c in objects.values() for o in c})
    case_group: list[str | None] = []
    for r, tp, loc, (tr, tr_known) in zip(records, prompt_t, locality, rephrase):
        if tp is None:
            case_group.append(None)
            continue
        touched = [tp] + ([loc[0]] if loc else []) + ([tr] if tr and tr_known else [])
        candidates: list[str] = []
        for t in touched:
            for g in [uf.find(t)] + sorted(uf.find(x) for x in refused.get(t, ())):
                if g not in candidates:
                    candidates.append(g)

        def score(g: str, obj: str = r["ground_truth"]) -> float:
            c = group_objects[g]
            return (c[obj] + 0.5) / (sum(c.values()) + 0.5 * vocab)

        case_group.append(max(candidates, key=score))  # ties: first candidate (the prompt's group)

    # relation phrasings: templates used by >= min_count of its cases
    usage: dict[str, Counter] = defaultdict(Counter)
    n_cases: Counter = Counter()
    for g, tp, loc, (tr, _) in zip(case_group, prompt_t, locality, rephrase):
        if g is None:
            continue
        n_cases[g] += 1
        usage[g][tp] += 1
        if loc is not None:
            usage[g][loc[0]] += 1
        if tr is not None and _usable(tr):
            usage[g][tr] += 1
    known_set = set(known)
    groups = sorted(n_cases, key=lambda g: (-n_cases[g], g))
    relations: list[Relation] = []
    for i, g in enumerate(groups):
        kept = {t: c for t, c in usage[g].items() if c >= min_count}
        if not kept:  # a tiny relation: keep what it has
            kept = dict(usage[g])
        order = sorted(kept, key=lambda t: (-kept[t], t))
        relations.append(
            Relation(
                id=f"R{i:02d}",
                templates=order,
                counts={t: kept[t] for t in order},
                prompt_templates=[t for t in order if t in known_set],
                n_cases=n_cases[g],
            )
        )
    rel_index = {g: i for i, g in enumerate(groups)}
    case_relation = [None if g is None else rel_index[g] for g in case_group]
    case_templates = [
        {"prompt": tp, "locality": loc[0] if loc else None, "rephrase": tr}
        for tp, loc, (tr, _) in zip(prompt_t, locality, rephrase)
    ]
    stats = {
        "cases": len(records),
        "prompt_templates": len(known),
        "locality_split": sum(loc is not None for loc in locality),
        "rephrase_known": sum(bool(k) for _, k in rephrase),
        "rephrase_derived": sum(t is not None and not k for t, k in rephrase),
        "links": len(links),
        "unions_refused": n_refused,
        "relations": len(relations),
        "templates": len({t for rel in relations for t in rel.templates}),
        "template_memberships": sum(len(rel.templates) for rel in relations),
    }
    log.info(
        "relations: %d relations, %d distinct templates (%d prompt templates); locality prompts split %d/%d, "
        "rephrases matching a prompt template %d, derived %d; %d unions refused as different relations",
        stats["relations"],
        stats["templates"],
        stats["prompt_templates"],
        stats["locality_split"],
        len(records),
        stats["rephrase_known"],
        stats["rephrase_derived"],
        n_refused,
    )
    return RelationRecovery(relations, case_relation, case_templates, locality, stats)


def _usable(template: str) -> bool:
    """A phrasing we can render facts with: one slot, ends before the object, not too long."""
    return template.count(SLOT) == 1 and template == template.strip() and 4 <= len(template) <= 120


# ---------------------------------------------------------------------------------------------
# facts and splits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str  # Relation.id
    object: str  # the true object (ground_truth / locality_ground_truth)
    target_new: str  # the counterfactual object of its case, for the comparison metrics
    kind: str  # "case" (the edited subject) or "neighbour" (its locality subject)
    case_id: int


def build_facts(
    records: list[dict], recovery: RelationRecovery, use: list[bool] | None = None
) -> tuple[list[Fact], dict]:
    """Case facts and neighbour facts of the records with `use` true (default all), deduplicated
    by (subject, relation); the first one wins."""
    facts: list[Fact] = []
    seen: dict[tuple[str, str], str] = {}
    conflicts = dropped = 0
    use = use if use is not None else [True] * len(records)
    for r, ri, loc, keep in zip(records, recovery.case_relation, recovery.locality, use):
        if not keep:
            continue
        if ri is None:
            dropped += 1
            continue
        rel = recovery.relations[ri].id
        candidates = [(r["subject"], r["ground_truth"], "case")]
        if loc is not None:
            candidates.append((loc[1], r["locality_ground_truth"], "neighbour"))
        for subject, obj, kind in candidates:
            subject, obj = subject.strip(), obj.strip()
            if not subject or not obj or obj == r["target_new"].strip():
                dropped += 1
                continue
            key = (subject, rel)
            if key in seen:
                conflicts += seen[key] != obj
                continue
            seen[key] = obj
            facts.append(Fact(subject, rel, obj, r["target_new"].strip(), kind, int(r.get("case_id", -1))))
    stats = {
        "facts": len(facts),
        "case_facts": sum(f.kind == "case" for f in facts),
        "neighbour_facts": sum(f.kind == "neighbour" for f in facts),
        "conflicting_duplicates": conflicts,
        "dropped": dropped,
    }
    log.info(
        "facts: %d (%d case, %d neighbour); %d duplicates with another object ignored",
        stats["facts"],
        stats["case_facts"],
        stats["neighbour_facts"],
        conflicts,
    )
    return facts, stats


def split_templates(relations: list[Relation], seed: int, hold_out_every: int = 3) -> dict[str, dict]:
    """Per relation: its train phrasings and held-out ones (1 of every `hold_out_every` of its
    prompt templates, when it has at least that many); derived phrasings always train."""
    splits: dict[str, dict] = {}
    for rel in relations:
        candidates = sorted(rel.prompt_templates)
        random.Random(f"{seed}-holdout-{rel.id}").shuffle(candidates)
        held = set()
        if len(candidates) >= hold_out_every:
            held = {t for i, t in enumerate(candidates) if i % hold_out_every == hold_out_every - 1}
        train = [t for t in rel.templates if t not in held]
        if not train:  # never leave a relation without a training phrasing
            train, held = list(rel.templates), set()
        splits[rel.id] = {"train": train, "held_out": [t for t in rel.templates if t in held]}
    return splits


# ---------------------------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------------------------


@dataclass
class TeachingCorpus:
    seed: int
    relations: list[Relation]
    splits: dict[str, dict]
    facts: list[Fact]
    wiki: list[str]
    info: dict
    _held_set: set | None = field(default=None, repr=False, compare=False)

    def train_templates(self, fact: Fact) -> list[str]:
        """The fact's train phrasings, minus any whose sentence is a held-out sentence of another
        fact (a subject with the same object in two relations that share a template)."""
        if self._held_set is None:
            self._held_set = set(self.held_out_sentences())
        train = self.splits[fact.relation]["train"]
        kept = [t for t in train if render(t, fact.subject, fact.object) not in self._held_set]
        return kept or train[:0]

    def held_out_templates(self, fact: Fact) -> list[str]:
        return self.splits[fact.relation]["held_out"]

    def epoch_sentences(self, epoch: int, per_fact: int = 2) -> list[str]:
        """Fact sentences of one pass: each fact in `per_fact` distinct random train phrasings
        (all of them if it has fewer), shuffled. Deterministic in (seed, epoch)."""
        rng = random.Random(f"{self.seed}-facts-{epoch}")
        out: list[str] = []
        for fact in self.facts:
            templates = self.train_templates(fact)
            chosen = templates if len(templates) <= per_fact else rng.sample(templates, per_fact)
            out.extend(render(t, fact.subject, fact.object) for t in chosen)
        rng.shuffle(out)
        return out

    def all_train_sentences(self) -> list[str]:
        return [render(t, f.subject, f.object) for f in self.facts for t in self.train_templates(f)]

    def held_out_sentences(self) -> list[str]:
        return [render(t, f.subject, f.object) for f in self.facts for t in self.held_out_templates(f)]

    def wiki_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.wiki)))
        random.Random(f"{self.seed}-wiki-{epoch}").shuffle(order)
        return order

    def splits_json(self) -> dict:
        return {
            "seed": self.seed,
            "how": {
                "facts": "(subject, ground_truth) of each selected CounterFact case (counts.fact_cases, ids in "
                "counts.fact_case_ids) and (locality subject, locality_ground_truth) of its neighbour, "
                "deduplicated by (subject, relation); relations are recovered from all train+val cases",
                "relations": "templates recovered from prompt / locality / rephrase prompts, grouped by union-find "
                "with an object-distribution guard (editkit.teaching.corpus)",
                "held_out": "per relation, 1 of every 3 of its prompt templates (if it has >= 3) never appears "
                "in training; derived (rephrase-only) phrasings always train; a train sentence equal to a "
                "held-out sentence of another fact is dropped",
                "sentence": "template with the subject, a space, the object, a full stop",
            },
            "counts": self.info,
            "relations": [
                {
                    "id": rel.id,
                    "label": rel.label,
                    "n_cases": rel.n_cases,
                    "train": self.splits[rel.id]["train"],
                    "held_out": self.splits[rel.id]["held_out"],
                    "template_counts": rel.counts,
                }
                for rel in self.relations
            ],
            "held_out_templates": {rel.id: self.splits[rel.id]["held_out"] for rel in self.relations},
        }


#: which CounterFact cases give facts by default: all of val, the first 500 of train. A small GPT-2
#: needs well over 100 exposures per fact to know ~90% of them, which the 40-minute CPU budget
#: affords for ~4k facts, not for all ~17.5k (train.py's docstring has the measurements).
DEFAULT_FACT_CASES = {"val": None, "train": 500}


def select_cases(records: list[dict], fact_cases: dict[str, int | None] | None) -> list[bool]:
    """Per record: is it a fact case? `fact_cases` maps split -> how many of its first cases
    (None: all; a split not named: none). None selects every record."""
    if fact_cases is None:
        return [True] * len(records)
    seen: Counter = Counter()
    use = []
    for r in records:
        split = r.get("split", "train")
        limit = fact_cases.get(split, 0)
        use.append(split in fact_cases and (limit is None or seen[split] < limit))
        seen[split] += 1
    return use


def build_corpus(
    data_dir: str | Path,
    seed: int = 0,
    max_records: int | None = None,
    wiki_chars: int | None = 12_000_000,
    hold_out_every: int = 3,
    fact_cases: dict[str, int | None] | None = None,
) -> TeachingCorpus:
    """Recover relations (from all cases), build facts (from the `fact_cases` selection, default
    all) and splits, load Wikipedia text; deterministic in `seed`."""
    records = counterfact_records(data_dir)
    if max_records is not None:
        records = records[:max_records]
    recovery = recover_relations(records)
    use = select_cases(records, fact_cases)
    facts, fact_stats = build_facts(records, recovery, use)
    splits = split_templates(recovery.relations, seed, hold_out_every)
    wiki = load_wikipedia(data_dir, max_chars=wiki_chars)
    info = {
        **recovery.stats,
        **fact_stats,
        "held_out_templates": sum(len(s["held_out"]) for s in splits.values()),
        "train_templates": sum(len(s["train"]) for s in splits.values()),
        "train_sentences": sum(len(splits[f.relation]["train"]) for f in facts),
        "wiki_docs": len(wiki),
        "wiki_chars": sum(len(d) for d in wiki),
        "max_records": max_records,
        "fact_cases": fact_cases,
        "fact_case_ids": {
            split: [int(r.get("case_id", -1)) for r, u in zip(records, use) if u and r.get("split") == split]
            for split in sorted({r.get("split", "train") for r in records})
        },
    }
    log.info(
        "corpus: %d facts, %d train / %d held-out phrasings, %d distinct train sentences, %d wiki docs (%.1f M chars)",
        len(facts),
        info["train_templates"],
        info["held_out_templates"],
        info["train_sentences"],
        len(wiki),
        info["wiki_chars"] / 1e6,
    )
    return TeachingCorpus(seed, recovery.relations, splits, facts, wiki, info)


# ---------------------------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------------------------


def train_tokenizer(corpus: TeachingCorpus, vocab_size: int = 8192, wiki_chars: int = 6_000_000):
    """A GPT-2-style byte-level BPE trained on the fact sentences and some Wikipedia text.

    Same pre-tokenisation as GPT-2 (a word carries its leading space: " Paris" is one token),
    no prefix space, ByteLevel offsets untrimmed as in GPT-2. `<|endoftext|>` is bos, eos and pad.
    Returns a `transformers.PreTrainedTokenizerFast`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def texts():
        yield from corpus.epoch_sentences(0, per_fact=3)
        total = 0
        for i in corpus.wiki_order(0):
            yield corpus.wiki[i]
            total += len(corpus.wiki[i])
            if total >= wiki_chars:
                break

    tk.train_from_iterator(texts(), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=128
    )
    log.info("tokenizer: byte-level BPE, %d tokens", len(tok))
    return tok


# ---------------------------------------------------------------------------------------------
# key statistics
# ---------------------------------------------------------------------------------------------


def key_statistics_facts(data_dir: str | Path, train_cases: int = 500, seed: int = 0) -> tuple["TeachingCorpus", list[Fact]]:
    """The facts whose sentences open the "editkit-teach" statistics corpus: those of the first
    `train_cases` CounterFact *train* cases and their neighbourhood facts, minus every fact
    whose subject is the subject of a val case (the ablation is reported on val)."""
    corpus = build_corpus(data_dir, seed=seed, wiki_chars=0, fact_cases={"train": train_cases, "val": 0})
    val_subjects = {r["subject"] for r in counterfact_records(data_dir, splits=("val",))}
    return corpus, [f for f in corpus.facts if f.subject not in val_subjects]


def key_statistics_documents(data_dir: str | Path, train_cases: int = 500, per_doc: int = 8, seed: int = 0) -> Iterator[str]:
    """The teaching model's own kind of text, for its key statistics C0 (corpus "editkit-teach"):
    first the training phrasings of `key_statistics_facts`, shuffled and packed `per_doc`
    sentences a document, then Wikipedia articles. Why: C0 should describe the keys of the text
    the model was trained on (GPT-2's is web text, hence Wikipedia in the papers); this model's
    is 80 % fact sentences, and keys common to a phrasing then have large variance in C0, so an
    edit spends less of itself on them and leaks less to other subjects (see the README)."""
    corpus, facts = key_statistics_facts(data_dir, train_cases, seed)
    sentences = [render(t, f.subject, f.object) for f in facts for t in corpus.train_templates(f)]
    random.Random(seed).shuffle(sentences)
    for s in range(0, len(sentences), per_doc):
        yield "\n".join(sentences[s : s + per_doc])
    yield from load_wikipedia(data_dir)
