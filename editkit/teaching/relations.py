"""Relations and their phrasings, recovered from CounterFact (which gives no relation ids).

CounterFact (flat EasyEdit format) gives each case a `prompt` with the subject written out, a
`rephrase_prompt` and a `locality_prompt` (a neighbour: another subject with the same relation and
the same object). The relation templates are recovered:

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
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SLOT = "{}"

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
