"""The shipped teaching model: loads offline, knows its facts, ships its defaults, and an edit
with those defaults (and the shipped key statistics, no corpus pass) flips a fact it knows."""

import json

import pytest
import torch
from models import same, snapshot

import editkit.stats as stats_mod
from editkit import Editor, load_model
from editkit.config import StatsConfig
from editkit.corpora import corpus_identity, documents
from editkit.demo import known_requests
from editkit.editor import HPARAMS
from editkit.models import ASSETS, TEACHING_MODEL
from editkit.paths import data_dir
from editkit.requests import EditRequest
from editkit.scoring import compare, target_logprob

FOLDER = ASSETS / TEACHING_MODEL
PAIRS = [(o, d) for o in ("rome", "emmet", "memit", "alphaedit") for d in (False, True)]


@pytest.fixture(scope="module")
def teach():
    return load_model(TEACHING_MODEL)


def cases(split: str, n: int) -> list[dict]:
    return json.loads((data_dir() / "counterfact" / f"counterfact-{split}.json").read_text())[:n]


def test_ships_small_and_loads_offline(teach):
    model, tok = teach
    size = sum(f.stat().st_size for f in FOLDER.rglob("*") if f.is_file())
    assert size <= 30 * 2**20
    assert type(model).__name__ == "GPT2LMHeadModel" and tok.is_fast
    assert not model.training
    splits = json.loads((FOLDER / "splits.json").read_text())
    assert splits["held_out_templates"], "held-out phrasings must be recorded"


@pytest.mark.parametrize("split", ["val", "train"])
def test_knows_its_facts_on_case_prompts(teach, split):
    """ground_truth above target_new on the CounterFact prompts of cases it was trained on
    (all of val, the first 500 of train); quality.json has the full measurement (≈97%)."""
    model, tok = teach
    rows = cases(split, 300)
    known = compare(model, tok, [r["prompt"] for r in rows], [r["ground_truth"] for r in rows], [r["target_new"] for r in rows])
    assert float(known.float().mean()) >= 0.9


def test_does_not_know_facts_it_never_saw(teach):
    """Control for the test above: on train cases past the trained ones it is near chance."""
    model, tok = teach
    trained = json.loads((FOLDER / "splits.json").read_text())["counts"]["fact_case_ids"]
    rows = [r for r in cases("train", 3000)[1000:] if r["case_id"] not in set(trained.get("train", []))][:300]
    assert len(rows) >= 100
    known = compare(model, tok, [r["prompt"] for r in rows], [r["ground_truth"] for r in rows], [r["target_new"] for r in rows])
    assert float(known.float().mean()) < 0.8


@pytest.mark.parametrize("objective,distribute", PAIRS)
def test_hparams_cover_every_pair(objective, distribute):
    hp = json.loads((FOLDER / HPARAMS).read_text())
    ed = Editor.for_model(FOLDER, objective=objective, distribute=distribute)
    assert ed.config.layers == hp["layers"]
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


def test_an_edit_flips_a_known_fact_with_shipped_defaults(teach, monkeypatch):
    model, tok = teach
    monkeypatch.setattr(stats_mod, "collect", lambda *a, **k: pytest.fail("the shipped statistics were not used"))
    (req,) = known_requests(model, tok, 1, [EditRequest.from_counterfact(r) for r in cases("val", 200)])
    before = snapshot(model)
    assert target_logprob(model, tok, [req.text], [req.target_new]) < target_logprob(model, tok, [req.text], [req.target_true])
    editor = Editor.for_model(model, objective="emmet", distribute=True, progress=False)
    with editor.applied(model, tok, [req]):
        new = target_logprob(model, tok, [req.text], [req.target_new])
        true = target_logprob(model, tok, [req.text], [req.target_true])
        assert new > true
        assert not same(before, snapshot(model))
    assert same(before, snapshot(model))


def test_statistics_corpus_is_the_models_own_text_without_val_facts():
    """The shipped C0 is over the generated "editkit-teach" corpus: sentences of facts of train
    cases, none about a val case's subject (the ablation reports on val), then Wikipedia."""

    from editkit.teaching.corpus import key_statistics_facts

    hp = json.loads((FOLDER / HPARAMS).read_text())
    assert hp["stats"]["corpus"] == "editkit-teach"
    assert corpus_identity("editkit-teach").startswith("generated:editkit-teach:")
    _, facts = key_statistics_facts(data_dir())
    val_subjects = {r["subject"] for r in cases("val", 2000)}
    assert len(facts) > 500 and not any(f.subject in val_subjects for f in facts)
    first = next(iter(documents("editkit-teach"))).split("\n")
    subjects = {f.subject for f in facts}
    assert len(first) == 8 and all(any(s in ln for s in subjects) for ln in first)


def test_auto_layers_trace_the_model_and_pick_the_best_window(teach):
    """layers="auto" on the shipped model: a causal trace over CounterFact facts it knows, MEMIT's
    rule (the 3-layer window of largest MLP effect at the last subject token), kept in the edit."""
    from editkit.auto_layers import best_window

    model, tok = teach
    ed = Editor.for_model(model, objective="emmet", strategy="spread", layers="auto", auto_layers=3, progress=False)
    req = EditRequest(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden")
    with ed.applied(model, tok, [req]) as edit:
        choice = edit.info["auto_layers"]
        assert edit.layers == choice["layers"] == best_window(torch.tensor(choice["effects"]), 3)
        assert choice["facts"] >= 10 and len(choice["effects"]) == 4
