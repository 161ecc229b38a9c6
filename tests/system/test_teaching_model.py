"""The shipped teaching model: loads offline, knows its invented people's facts (and not those of
people it never met), recalls at the subject, ships its defaults and cases, and a ROME edit at
the subject's last token with those defaults (and the shipped key statistics, no corpus pass)
flips one fact and leaves its neighbours."""

import json

import pytest
import torch
from models import same, snapshot

import editkit.stats as stats_mod
from editkit import Editor, load_model
from editkit.config import StatsConfig
from editkit.corpora import corpus_identity, documents
from editkit.editor import HPARAMS
from editkit.evaluation import load
from editkit.models import ASSETS, TEACHING_MODEL
from editkit.scoring import compare, target_logprob
from editkit.teaching.cases import make, people_of
from editkit.teaching.quality import people_knowledge

FOLDER = ASSETS / TEACHING_MODEL
PAIRS = [(o, d) for o in ("rome", "emmet", "memit", "alphaedit") for d in (False, True)]


@pytest.fixture(scope="module")
def teach():
    return load_model(TEACHING_MODEL)


def test_ships_small_and_loads_offline(teach):
    model, tok = teach
    size = sum(f.stat().st_size for f in FOLDER.rglob("*") if f.is_file())
    assert size <= 30 * 2**20
    assert type(model).__name__ == "GPT2LMHeadModel" and tok.is_fast
    assert not model.training
    splits = json.loads((FOLDER / "splits.json").read_text())
    assert splits["kind"] == "people" and all(r["held_out"] for r in splits["relations"]), "held-out phrasings must be recorded"


def test_the_default_command_trains_the_shipped_models_config():
    """`python -m editkit.teaching.train --out DIR` with no other flag trains what the shipped model
    was trained with (its training.json), up to how it ran (threads, checkpoint interval)."""
    from dataclasses import asdict

    from editkit.teaching.train import config_from_args, parser

    shipped = json.loads((FOLDER / "training.json").read_text())["config"]
    default = json.loads(json.dumps(asdict(config_from_args(parser().parse_args(["--out", "unused"])))))
    how = ("threads", "checkpoint_minutes")
    assert {k: v for k, v in default.items() if k not in how} == {k: v for k, v in shipped.items() if k not in how}


def test_every_subject_ends_in_one_whole_surname_token(teach):
    """The edit's key is read at the last subject token: with the shipped BPE that token is the
    person's own surname, never a piece shared with people of other surnames."""
    _, tok = teach
    persons = people_of(FOLDER).persons
    assert all(len(tok(" " + p["name"].split()[1])["input_ids"]) == 1 for p in persons)
    last = {tok(p["name"])["input_ids"][-1] for p in persons}
    assert len(last) == len({p["name"].split()[1] for p in persons})  # one last token per surname (982 for 1,000 people)


def test_knows_a_sample_of_its_facts_and_not_those_of_strangers(teach):
    """The object of a random sample of its people's facts wins over another object of the relation
    in the training phrasings (quality.json has the full measurement); for people of another
    seed, never trained, it is near chance: the facts are learnt per person, not guessed."""
    model, tok = teach
    own = people_knowledge(model, tok, people_of(FOLDER), n=150, seed=7)
    p = people_of(FOLDER)
    strangers = people_knowledge(model, tok, p.like(p.seed + 99, n=200), n=150, seed=7)
    assert own["all_train"]["pairwise"] >= 0.9
    assert strangers["all_train"]["pairwise"] < 0.7


def test_shipped_cases_are_its_known_facts(teach):
    """cases/train.json + cases/val.json are what `python -m editkit.teaching.cases` makes: every
    fact of the population whose true object the model prefers, in people.requests' order."""
    model, tok = teach
    train, val, _ = make(model, tok, people_of(FOLDER), tune=len(load(f"{TEACHING_MODEL}:train")))
    assert load(f"{TEACHING_MODEL}:train").records == train and load(f"{TEACHING_MODEL}:val").records == val
    assert len(val) >= 1024  # the ablation's largest batch


def test_recall_happens_at_the_subject(teach):
    """The causal trace of ROME: restoring the last subject token's clean hidden state at the
    first layer brings back most of P(object) (goal >= 50 %), and the MLP effect at the last
    subject token is at least that at the last token, at its peak."""
    from editkit.trace import CATEGORIES, LAST_SUBJECT, trace_facts

    model, tok = teach
    s = trace_facts(model, tok, load(f"{TEACHING_MODEL}:val", n=60).records, kinds=["hidden", "mlp"], samples=3, window=1,
                    max_known=20, progress=False)
    restore = s.effects["hidden"][LAST_SUBJECT] / (s.high - s.low)
    mlp_subject, mlp_last = s.effects["mlp"][LAST_SUBJECT], s.effects["mlp"][CATEGORIES.index("last token")]
    assert restore[0] >= 0.5
    assert mlp_subject.max() >= mlp_last.max()


@pytest.mark.parametrize("objective,distribute", PAIRS)
def test_hparams_cover_every_pair(objective, distribute):
    hp = json.loads((FOLDER / HPARAMS).read_text())
    ed = Editor.for_model(FOLDER, objective=objective, distribute=distribute)
    pair = hp["objectives"][f"{objective}+{'spread' if distribute else 'single'}"]
    assert ed.config.layers == pair.get("layers", hp["layers"])
    if not distribute:  # one layer: where the trace's MLP effect at the last subject token peaks (ROME's rule)
        effects = hp["layers_from"]["effects"]
        assert ed.config.layers == [max(range(len(effects)), key=effects.__getitem__)]
    assert ed.config.target.fact_token == "subject_last"  # the papers' default: the model recalls at the subject
    for name, value in hp["target"].items():
        if name not in hp["objectives"].get(f"{objective}+{'spread' if distribute else 'single'}", {}) and name not in hp["objectives"].get(objective, {}):
            assert getattr(ed.config.target, name) == value


def test_shipped_statistics_cover_the_default_layers(teach):
    model, _ = teach
    hp = json.loads((FOLDER / HPARAMS).read_text())
    cfg = StatsConfig(**hp["stats"])
    for layer in hp["layers"]:
        C0 = stats_mod.read_entry(FOLDER / "stats", stats_mod.cache_key(model, layer, cfg))
        assert C0 is not None, f"no shipped statistics for layer {layer}"
        assert torch.allclose(C0, C0.T) and C0.shape[0] == C0.shape[1]


def test_a_rome_edit_at_the_subject_flips_one_fact_and_leaves_its_neighbours(teach, monkeypatch):
    model, tok = teach
    monkeypatch.setattr(stats_mod, "collect", lambda *a, **k: pytest.fail("the shipped statistics were not used"))
    reqs = load(f"{TEACHING_MODEL}:val", n=40).requests()
    before = snapshot(model)
    editor = Editor.for_model(model, objective="rome", progress=False)
    flipped, kept, n_nb = 0, 0, 0
    for req in reqs[:8]:
        nb = req.neighborhood_prompts
        assert compare(model, tok, [req.text], [req.target_true], [req.target_new]).all()
        nb_before = compare(model, tok, nb, [req.target_true] * len(nb), [req.target_new] * len(nb))
        with editor.applied(model, tok, [req]):
            flipped += int(target_logprob(model, tok, [req.text], [req.target_new]) > target_logprob(model, tok, [req.text], [req.target_true]))
            after = compare(model, tok, nb, [req.target_true] * len(nb), [req.target_new] * len(nb))
            kept += int((after & nb_before).sum())
            n_nb += int(nb_before.sum())
        assert same(before, snapshot(model))
    assert flipped == 8
    assert n_nb and kept / n_nb >= 0.9


def test_statistics_corpus_is_the_same_kind_of_text_about_other_people():
    """The shipped C0 is over the generated "editkit-teach" corpus (v2): biographies of another
    population, then Wikipedia; none of the people the cases edit."""
    hp = json.loads((FOLDER / HPARAMS).read_text())
    assert hp["stats"]["corpus"] == "editkit-teach"
    assert corpus_identity("editkit-teach") == "generated:editkit-teach:v2"
    edited = {p["name"] for p in people_of(FOLDER).persons}
    first = list(zip(range(50), documents("editkit-teach")))
    assert all(". " in d and not any(n in d for n in edited) for _, d in first)


def test_auto_layers_trace_the_model_and_pick_the_best_window(teach):
    """layers="auto" on the shipped model: a causal trace over facts it knows (its own cases),
    MEMIT's rule (the window of largest MLP effect at the last subject token), kept in the edit."""
    from editkit.auto_layers import best_window

    model, tok = teach
    ed = Editor.for_model(model, objective="emmet", strategy="spread", layers="auto", auto_layers=2, progress=False)
    (req,) = load(f"{TEACHING_MODEL}:val", n=1).requests()
    with ed.applied(model, tok, [req]) as edit:
        choice = edit.info["auto_layers"]
        assert edit.layers == choice["layers"] == best_window(torch.tensor(choice["effects"]), 2)
        assert choice["facts"] >= 10 and len(choice["effects"]) == 4
