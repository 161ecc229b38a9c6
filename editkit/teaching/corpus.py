"""The teaching corpus: CounterFact facts in several phrasings, mixed with Wikipedia text.

The relations and their phrasings come from `relations.py` (recovered from CounterFact's prompt,
rephrase and locality prompts). Facts are (subject, relation, object): each case's (subject,
ground_truth) and its neighbour's (locality subject, locality_ground_truth), deduplicated by
(subject, relation), for the cases selected by `fact_cases` (the teaching model uses
DEFAULT_FACT_CASES; relations always come from all cases). Every relation keeps some of its
prompt templates out of training (`held_out`, 1 of every `hold_out_every`) for
the paraphrase metric. Everything is deterministic under the seed.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..corpora import file_documents
from .relations import (
    Relation,
    RelationRecovery,
    recover_relations,
    render,
)

log = logging.getLogger(__name__)

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


def article_text(doc: str) -> str:
    """A WikiExtractor article without its title line (the first) and blank lines, each line
    stripped."""
    lines = [ln.strip() for ln in doc.split("\n")]
    return "\n".join(ln for ln in lines[1:] if ln)


def load_wikipedia(data_dir: str | Path, max_chars: int | None = None, from_end: bool = False) -> list[str]:
    """Article texts (`article_text`) of the data folder's WikiExtractor files, read by
    editkit.corpora; from_end: starting with the last file, far from the text training reads first."""
    if max_chars is not None and max_chars <= 0:
        return []
    files = sorted((Path(data_dir) / "wikipedia").glob("wiki_*"), reverse=from_end)
    if not files:  # never an empty text in its place: C0, training and the NLLs would quietly change
        raise FileNotFoundError(f"no Wikipedia text: {Path(data_dir) / 'wikipedia'} has no wiki_* files; set EDITKIT_DATA "
                                "to the data folder (the one holding wikipedia/), or keep ../shared/data beside the checkout")
    docs: list[str] = []
    total = 0
    for path in files:
        for doc in map(article_text, file_documents(path)):
            if not doc:
                continue
            docs.append(doc)
            total += len(doc)
            if max_chars is not None and total >= max_chars:
                return docs
    return docs


def wiki_order(seed: int, n: int, epoch: int) -> list[int]:
    """The order Wikipedia documents are read in one pass; deterministic in (seed, epoch)."""
    order = list(range(n))
    random.Random(f"{seed}-wiki-{epoch}").shuffle(order)
    return order


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
        return wiki_order(self.seed, len(self.wiki), epoch)

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


def train_tokenizer(corpus: TeachingCorpus, vocab_size: int = 8192, wiki_chars: int = 6_000_000, doc_passes: int = 3):
    """A GPT-2-style byte-level BPE trained on the fact sentences and some Wikipedia text.

    Same pre-tokenisation as GPT-2 (a word carries its leading space: " Paris" is one token),
    no prefix space, ByteLevel offsets untrimmed as in GPT-2. `<|endoftext|>` is bos, eos and pad.
    The text is `doc_passes` passes over the corpus's documents, then `wiki_chars` of Wikipedia:
    BPE merges by frequency, so more passes keep the documents' words (invented names) whole
    against Wikipedia's. Returns a `transformers.PreTrainedTokenizerFast`.
    """

    def texts():
        yield from corpus.epoch_sentences(0, per_fact=doc_passes)
        total = 0
        for i in corpus.wiki_order(0):
            if total >= wiki_chars:
                break
            yield corpus.wiki[i]
            total += len(corpus.wiki[i])

    return train_bpe(texts(), vocab_size)


def train_bpe(texts: Iterator[str], vocab_size: int):
    """The byte-level BPE of `train_tokenizer` over any texts."""
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
    tk.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=128
    )
    log.info("tokenizer: byte-level BPE, %d tokens", len(tok))
    return tok


# ---------------------------------------------------------------------------------------------
# key statistics
# ---------------------------------------------------------------------------------------------


def key_statistics_facts(data_dir: str | Path, train_cases: int = 500, seed: int = 0) -> tuple["TeachingCorpus", list[Fact]]:
    """The facts whose sentences open the "editkit-teach" statistics corpus (v1, for a model of the
    "counterfact" recipe): those of the first
    `train_cases` CounterFact *train* cases and their neighbourhood facts, minus every fact
    whose subject is the subject of a val case (the ablation is reported on val)."""
    corpus = build_corpus(data_dir, seed=seed, wiki_chars=0, fact_cases={"train": train_cases, "val": 0})
    val_subjects = {r["subject"] for r in counterfact_records(data_dir, splits=("val",))}
    return corpus, [f for f in corpus.facts if f.subject not in val_subjects]


def key_statistics_documents(data_dir: str | Path, train_cases: int = 500, per_doc: int = 8, seed: int = 0) -> Iterator[str]:
    """A CounterFact-trained teaching model's own kind of text, for its key statistics C0 (corpus
    "editkit-teach" v1; the people model's is people.key_statistics_documents):
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
