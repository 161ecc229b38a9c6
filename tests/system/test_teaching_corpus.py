"""The teaching corpus: relation templates, held-out phrasings, determinism, tokenizer."""


import pytest

from editkit.paths import data_dir
from editkit.teaching import TEACH_MODEL_DIR
from editkit.teaching.corpus import build_corpus, counterfact_records, train_tokenizer
from editkit.teaching.relations import TemplateIndex, recover_relations, rephrase_template

DATA = data_dir()  # $EDITKIT_DATA, else ../shared/data
pytestmark = pytest.mark.skipif(not (DATA / "counterfact").exists(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def recovery():
    return recover_relations(counterfact_records(DATA))


@pytest.fixture(scope="module")
def small():
    return build_corpus(DATA, seed=0, max_records=1500, wiki_chars=300_000)


def relation_with(recovery, template):
    hits = [r for r in recovery.relations if template in r.templates]
    assert hits, f"no relation has {template!r}"
    return hits


def test_located_in_is_one_relation(recovery):
    rels = relation_with(recovery, "{}, which is located in")
    assert any("{} is located in" in r.templates for r in rels)


def test_shared_template_does_not_merge_relations(recovery):
    # "{} plays" ends in a genre, an instrument or a sport: those stay three relations
    genre = relation_with(recovery, "The genre played by {} is")
    instrument = relation_with(recovery, "{} plays the instrument")
    sport = relation_with(recovery, "{} professionally plays the sport")
    assert {r.id for r in genre}.isdisjoint({r.id for r in instrument})
    assert {r.id for r in sport}.isdisjoint({r.id for r in instrument})
    assert any("{}, playing the" in r.templates for r in instrument)
    assert 20 <= len(recovery.relations) <= 40


def test_template_matching():
    index = TemplateIndex(["{} is located in", "{}, which is located in", "{} is in"])
    assert index.split_filled("Biure, which is located in") == ("{}, which is located in", "Biure")
    assert index.split_filled("nothing to see here") is None
    noisy = "and Sallie Beavers Riley. Autonomous University of Madrid is located in"
    assert rephrase_template(noisy, "Autonomous University of Madrid", index) == ("{} is located in", True)
    derived = "Some noise here. Where Shree Pundalik is from, people speak the language of"
    assert rephrase_template(derived, "Shree Pundalik", index) == (
        "Where {} is from, people speak the language of",
        False,
    )


def test_held_out_phrasings_never_in_training(small):
    held = small.held_out_sentences()
    assert held, "some relation should hold out a phrasing"
    train = set(small.all_train_sentences())
    assert not train.intersection(held)
    text = "\n".join(small.epoch_sentences(0, per_fact=3))
    assert not [s for s in held[:300] if s in text]
    for rel in small.relations:
        s = small.splits[rel.id]
        assert set(s["train"]).isdisjoint(s["held_out"]) and s["train"]
        assert set(s["held_out"]) <= set(rel.prompt_templates)


def test_deterministic_under_seed(small):
    again = build_corpus(DATA, seed=0, max_records=1500, wiki_chars=300_000)
    assert again.splits_json() == small.splits_json()
    assert again.epoch_sentences(3) == small.epoch_sentences(3)
    assert again.wiki_order(1) == small.wiki_order(1)
    other = build_corpus(DATA, seed=1, max_records=1500, wiki_chars=300_000)
    assert other.epoch_sentences(3) != small.epoch_sentences(3)


def test_tokenizer_round_trip_and_offsets(small, tmp_path):
    from transformers import AutoTokenizer

    from editkit.tokens import locate_subject

    train_tokenizer(small, vocab_size=2048, wiki_chars=300_000).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.is_fast and tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    for text in small.epoch_sentences(0)[:50] + [small.wiki[0][:2000], "Ünïcödé — 東京 😀"]:
        assert tok.decode(tok(text)["input_ids"]) == text
    # a word with its leading space is one token, as in GPT-2
    assert tok.convert_ids_to_tokens(tok(" located")["input_ids"]) == ["Ġlocated"]
    text = "Autonomous University of Madrid is located in"
    enc = tok(text, return_offsets_mapping=True)
    assert enc["offset_mapping"][-1][1] == len(text)
    _, first, last = locate_subject(tok, "{} is located in", "Autonomous University of Madrid")
    assert first == 0 and tok.decode(enc["input_ids"][last + 1 :]) == " is located in"


@pytest.mark.skipif(not (TEACH_MODEL_DIR / "tokenizer.json").exists(), reason="teaching model not trained")
def test_shipped_tokenizer():
    from transformers import AutoTokenizer

    from editkit.teaching.cases import people_of
    from editkit.teaching.people import RELATIONS

    tok = AutoTokenizer.from_pretrained(TEACH_MODEL_DIR)
    assert tok.convert_ids_to_tokens(tok(" Paris")["input_ids"]) == ["ĠParis"]
    objects = [o for _, _, objs in RELATIONS.values() for o in objs]
    assert all(len(tok(" " + o)["input_ids"]) == 1 for o in objects)  # every object one token, as in GPT-2's " Paris"
    names = [p["name"] for p in people_of(TEACH_MODEL_DIR).persons[:50]]
    assert all(2 <= len(tok(" " + n)["input_ids"]) <= 4 for n in names)  # a subject of several tokens: "last subject token" means something


def test_fact_rows_train_only_objects(small):
    import torch

    from editkit.teaching.train import BatchStream, StreamState, TrainConfig

    tok = train_tokenizer(small, vocab_size=1024, wiki_chars=100_000)
    cfg = TrainConfig(batch_size=4, wiki_fraction=0.25, seq_len=64)
    batch = BatchStream(small, tok, cfg, StreamState()).next_batch()
    assert batch["is_wiki"].tolist() == [False, False, False, True]
    fact, wiki = batch["parts"]
    assert fact["input_ids"].shape == fact["labels"].shape and fact["input_ids"].shape[0] == 3 and fact["input_ids"].shape[1] <= 64
    assert wiki["input_ids"].shape == (1, 64) and (wiki["labels"] != -100).all()  # the wiki row: every token
    objects = {f.object for f in small.facts}
    for row, labels in zip(fact["input_ids"], fact["labels"]):
        keep = labels != -100
        assert keep.any() and torch.equal(labels[:-1][keep[:-1]], row[1:][keep[:-1]])
        words = tok.decode(labels[keep]).split(".")
        assert all(w.strip() in objects for w in words if w.strip())


def test_saved_tokenizer_names_a_class_every_supported_transformers_loads(small, tmp_path):
    """transformers 5 saves `TokenizersBackend`, a class 4.x lacks; editkit writes GPT2TokenizerFast."""
    import json

    from transformers import AutoTokenizer

    from editkit.teaching.train import save_tokenizer

    tok = train_tokenizer(small, vocab_size=512, wiki_chars=50_000)
    save_tokenizer(tok, tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "GPT2TokenizerFast"
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(" Paris is")["input_ids"] == tok(" Paris is")["input_ids"]
    shipped = json.loads((TEACH_MODEL_DIR / "tokenizer_config.json").read_text())
    assert shipped["tokenizer_class"] == "GPT2TokenizerFast"


def test_more_biography_passes_in_the_bpe_text_keep_the_surnames_whole():
    """BPE merges by frequency: weighed up against Wikipedia's words, the invented surnames become
    one token each (the shipped recipe: 100 passes), where a few passes leave them split."""
    from editkit.teaching.corpus import load_wikipedia
    from editkit.teaching.people import People, PeopleCorpus

    corpus = PeopleCorpus(People(seed=4, n=300), load_wikipedia(DATA, max_chars=1_000_000))

    def whole(passes):
        tok = train_tokenizer(corpus, vocab_size=2048, wiki_chars=1_000_000, doc_passes=passes)
        return sum(len(tok(" " + p["name"].split()[1])["input_ids"]) == 1 for p in corpus.people.persons) / corpus.people.n

    few, many = whole(3), whole(100)
    assert few < 0.5 and many == 1.0
