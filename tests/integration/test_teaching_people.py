"""The invented-people corpus (editkit.teaching.people): the population, its biographies, its
CounterFact-format requests, and the training rows made from them."""

import random

import pytest
import torch

from editkit.evaluation.datasets import Dataset
from editkit.teaching.people import RELATIONS, People, PeopleCorpus, requests


@pytest.fixture(scope="module")
def people():
    return People(seed=3, n=60, attributes=3, phrasings=3)


def test_population_is_seeded_and_complete(people):
    again = People(seed=3, n=60, attributes=3, phrasings=3)
    assert again.persons == people.persons and People(seed=4, n=60, attributes=3).persons != people.persons
    assert len({p["name"] for p in people.persons}) == 60
    for p in people.persons:
        assert len(p["facts"]) == 3 and all(o in RELATIONS[r][2] for r, o in p["facts"].items())
    assert len(people.facts) == 180
    with pytest.raises(ValueError, match="attributes"):
        People(n=2, attributes=9)


def test_a_biography_tells_each_fact_once_in_a_train_phrasing(people):
    rng = random.Random(0)
    for p in people.persons[:20]:
        bio = people.biography(p, rng)
        sentences = [s.strip() for s in bio.split(".") if s.strip()]
        assert len(sentences) == len(p["facts"])
        told = set()
        for s in sentences:
            hits = [(r, o) for r, o in p["facts"].items() for t in people.train_phrasings(r) if s == f"{t.format(p['name'])} {o}"]
            assert hits, s
            told |= set(hits)
        assert told == set(p["facts"].items())
        assert not any(t.format(p["name"]) in bio for r in p["facts"] for t in people.held_out_phrasings(r))


def test_requests_are_counterfact_records_about_known_facts(people):
    recs = requests(people, 30, seed=1)
    reqs = Dataset("counterfact", "people", recs).requests()
    truth = {(f.subject, f.relation): f.object for f in people.facts}
    for rec, req in zip(recs, reqs):
        rel = rec["requested_rewrite"]["relation_id"]
        assert truth[(req.subject, rel)] == req.target_true != req.target_new and req.target_new in RELATIONS[rel][2]
        assert req.prompt == people.train_phrasings(rel)[0]
        assert req.prompt.format(req.subject) not in req.paraphrase_prompts and len(req.paraphrase_prompts) == 2 + 2
        for prompt in req.neighborhood_prompts:  # other people, same relation, same true object
            name = next(f.subject for f in people.facts if prompt == req.prompt.format(f.subject))
            assert name != req.subject and truth[(name, rel)] == req.target_true


def test_document_rows_train_every_biography_token(people):
    from transformers import AutoTokenizer

    from editkit.paths import data_dir
    from editkit.teaching.train import BatchStream, StreamState, TrainConfig

    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    corpus = PeopleCorpus(people, ["Some wiki text about nothing in particular. " * 40])
    cfg = TrainConfig(batch_size=4, wiki_fraction=0.25, seq_len=64, corpus="people")
    stream = BatchStream(corpus, tok, cfg, StreamState())
    batch = stream.next_batch()
    assert batch["is_wiki"].tolist() == [False, False, False, True]
    bios = set(corpus.documents(0))
    for row, labels in zip(batch["input_ids"][:3], batch["labels"][:3]):
        keep = labels != -100
        assert torch.equal(labels[:-1][keep[:-1]], row[1:][keep[:-1]])
        text = tok.decode(row)
        pieces = [t for t in text.split("\n") if t.strip()]
        assert all(p in bios for p in pieces[1:-1])  # whole biographies, one a line (the first loses its first token)
    assert batch["sentences"] > 0


def test_the_trainer_builds_the_named_corpus(tmp_path):
    from editkit.teaching.train import TrainConfig, make_corpus

    (tmp_path / "wikipedia").mkdir()
    (tmp_path / "wikipedia" / "wiki_00").write_text('<doc id="1">\nT\nsome text\n</doc>\n')
    c = make_corpus(TrainConfig(corpus="people", people=7, attributes=2, phrasings=1), tmp_path)
    assert len(c.facts) == 14 and c.wiki == ["some text"] and len(c.documents(0)) == 7
    with pytest.raises(ValueError, match="choose one of"):
        make_corpus(TrainConfig(corpus="nope"), tmp_path)
