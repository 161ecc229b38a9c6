"""Evaluation: metric definitions on hand-made cases, batching invariance, loaders, generation."""

import json
import math

import pytest
import torch
from models import same, snapshot, tiny, tokenizer

from editkit import Editor, EditRequest
from editkit.evaluation import edit_metrics, evaluate, load
from editkit.evaluation.counterfact import counterfact_rows, harmonic_mean, summarise
from editkit.evaluation.datasets import fetch, guess_kind, read_records, resolve_source
from editkit.evaluation.generation import ReferenceTexts, TfIdf, generate, generation_metrics, ngram_entropy
from editkit.evaluation.zsre import top1_predictions, zsre_rows
from editkit.scoring import target_logprob

FAST = dict(steps=3, n_context=1, context="fixed", n_tokens=1500, max_len=64, progress=False)


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(scope="module")
def model():
    return tiny("gpt2")


@pytest.fixture(scope="module")
def cf():
    return load("counterfact:val", n=6).requests()


# ---------------------------------------------------------------- pure metric math
def test_ngram_entropy_matches_hand_computation():
    # words a b a b: bigrams ab, ba, ab → (2/3, 1/3); trigrams aba, bab → (1/2, 1/2)
    h2 = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    h3 = 1.0
    assert ngram_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * h3) / 2)
    assert ngram_entropy("x") == 0.0
    repetitive = "the cat the cat the cat the cat the cat the cat"
    varied = "the quick brown fox jumps over a lazy dog near the river bank"
    assert ngram_entropy(repetitive) < ngram_entropy(varied)


def test_tfidf_idf_and_cosine():
    docs = ["paris is in france", "rome is in italy", "berlin lies in germany"]
    tf = TfIdf.fit(docs)
    assert tf.n_docs == 3
    assert tf.idf["in"] == pytest.approx(math.log(4 / 4) + 1)  # in every document
    assert tf.idf["paris"] == pytest.approx(math.log(4 / 2) + 1)
    assert "a" not in tf.idf  # one-letter words are not words (scikit-learn's default)
    assert tf.similarity("Paris is in France", "paris IS in france") == pytest.approx(1.0)
    assert tf.similarity("paris france", "rome italy") == 0.0
    a, b = "paris is in italy", "rome is in france"
    assert tf.similarity(a, b) == pytest.approx(tf.similarity(b, a))
    # by hand: shared words "is", "in" (idf 1 + ln(4/3) and 1)
    va = {w: tf.idf[w] for w in ["paris", "is", "in", "italy"]}
    vb = {w: tf.idf[w] for w in ["rome", "is", "in", "france"]}
    na, nb = math.sqrt(sum(x * x for x in va.values())), math.sqrt(sum(x * x for x in vb.values()))
    assert tf.similarity(a, b) == pytest.approx((va["is"] * vb["is"] + va["in"] * vb["in"]) / (na * nb))
    assert 0 < tf.similarity(a, b) < 1


def test_tfidf_save_load(tmp_path):
    tf = TfIdf.fit(["one two", "two three"], corpus="x")
    back = TfIdf.load(tf.save(tmp_path / "t.json"))
    assert back.idf == tf.idf and back.n_docs == 2 and back.corpus == "x"


def test_reference_passages_whole_word(tmp_path):
    text = (
        '<doc id="1" title="A">\nA\n\nThe river Seine flows through Paris and its many bridges are famous.\n'
        "Parisians say otherwise about many things and the city of their birth, in long sentences.\n</doc>\n"
    )
    (tmp_path / "wiki_00").write_text(text)
    refs = ReferenceTexts(str(tmp_path), min_chars=20)
    assert refs.passages("Paris") == ["The river Seine flows through Paris and its many bridges are famous."]
    assert refs.passages("London") == []


def test_harmonic_mean_and_summary():
    assert harmonic_mean([1.0, 0.5, 0.5]) == pytest.approx(3 / (1 + 2 + 2))
    assert harmonic_mean([1.0, 0.0, 1.0]) == 0.0
    rows = [
        {"case_id": 0, "efficacy_success": 1.0, "paraphrase_success": 1.0, "neighborhood_success": 0.0},
        {"case_id": 1, "efficacy_success": 1.0, "paraphrase_success": 0.0, "neighborhood_success": 1.0},
    ]
    s = summarise(rows)
    assert s["efficacy_success"] == 1.0 and s["paraphrase_success"] == 0.5
    assert s["score"] == pytest.approx(harmonic_mean([1.0, 0.5, 0.5])) and s["n"] == 2


# ---------------------------------------------------------------- CounterFact on a model
def test_counterfact_rows_agree_with_scoring(model, tok, cf):
    rows = counterfact_rows(model, tok, cf)
    lp_new = target_logprob(model, tok, [r.text for r in cf], [r.target_new for r in cf])
    lp_true = target_logprob(model, tok, [r.text for r in cf], [r.target_true for r in cf])
    for r, row, a, b in zip(cf, rows, lp_new.tolist(), lp_true.tolist()):
        assert row["efficacy_success"] == float(a > b)
        assert row["efficacy_magnitude"] == pytest.approx(math.exp(a) - math.exp(b), rel=1e-4, abs=1e-9)
        p = r.paraphrase_prompts[0]
        pa, pb = target_logprob(model, tok, [p, p], [r.target_new, r.target_true]).tolist()
        assert row["paraphrase_success"] == float(pa > pb)
        u = r.neighborhood_prompts[0]
        na, nb = target_logprob(model, tok, [u, u], [r.target_new, r.target_true]).tolist()
        assert row["neighborhood_success"] == float(nb > na)
        assert row["neighborhood_magnitude"] == pytest.approx(math.exp(nb) - math.exp(na), rel=1e-4, abs=1e-9)


def test_counterfact_swapping_new_and_true_flips_success(model, tok, cf):
    swapped = [r.model_copy(update={"target_new": r.target_true, "target_true": r.target_new}) for r in cf]
    a, b = counterfact_rows(model, tok, cf), counterfact_rows(model, tok, swapped)
    for x, y in zip(a, b):
        assert x["efficacy_success"] + y["efficacy_success"] == 1.0  # ties have probability 0 here
        assert x["neighborhood_success"] + y["neighborhood_success"] == 1.0
        assert x["efficacy_magnitude"] == pytest.approx(-y["efficacy_magnitude"], abs=1e-9)


def test_counterfact_batching_does_not_change_numbers(model, tok, cf):
    s1, r1 = evaluate(model, tok, "counterfact", cf, batch_size=1)
    s64, r64 = evaluate(model, tok, "counterfact", cf, batch_size=64)
    for x, y in zip(r1, r64):
        for k in x:
            if k != "case_id":
                assert x[k] == pytest.approx(y[k], rel=1e-4, abs=1e-9)
    assert s1["score"] == pytest.approx(s64["score"])


def test_counterfact_needs_true_object(model, tok):
    r = EditRequest(prompt="{} is a", subject="Paris", target_new="city")
    with pytest.raises(ValueError, match="target_true"):
        counterfact_rows(model, tok, [r])


# ---------------------------------------------------------------- zsRE
def test_top1_predictions_teacher_forced_and_padding_safe(model, tok):
    prompts = ["The capital of France is", "Michael Jordan plays the sport of basketball and"]
    targets = ["Paris and London", "golf"]
    both = top1_predictions(model, tok, prompts, targets, batch_size=2)
    alone = [top1_predictions(model, tok, [p], [t])[0] for p, t in zip(prompts, targets)]
    assert both == alone
    # by hand: argmax of logits at the positions that predict each target token
    p_ids = tok(prompts[0], add_special_tokens=False)["input_ids"]
    t_ids = tok(" " + targets[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p_ids + t_ids])).logits[0]
    assert both[0] == (t_ids, logits[len(p_ids) - 1 : -1].argmax(-1).tolist())


def test_zsre_greedy_answer_scores_one(model, tok):
    for q in ["Who wrote Hamlet?", "The capital of France is", "What is the product made by UniFirst?"]:
        ids = tok(q)["input_ids"]
        with torch.no_grad():
            t = int(model(torch.tensor([ids])).logits[0, -1].argmax())
        answer = tok.decode([t])
        if answer.startswith(" ") and tok(answer)["input_ids"] == [t]:
            break
    else:
        pytest.skip("no greedy answer survives a decode/encode round trip")
    r = EditRequest(prompt=q, subject=q.split()[-1].rstrip("?"), target_new=answer.lstrip(), paraphrase_prompts=[q],
                    neighborhood_prompts=[q], neighborhood_answer=answer + " and more")
    (row,) = zsre_rows(model, tok, [r])
    assert row["efficacy"] == 1.0 and row["generalization"] == 1.0
    assert row["loc_pred"][0][0] == t  # the first loc token is the same greedy prediction


def test_zsre_specificity_against_baseline(model, tok):
    data = load("zsre", n=4)
    reqs = data.requests()
    s0, base = evaluate(model, tok, "zsre", reqs)
    assert s0["specificity"] == 1.0
    _, again = evaluate(model, tok, "zsre", reqs, baseline=base)
    assert all(r["specificity"] == 1.0 for r in again)
    wrong = [{**b, "loc_pred": [[-1] * len(p) for p in b["loc_pred"]]} for b in base]
    _, off = evaluate(model, tok, "zsre", reqs, baseline=wrong)
    assert all(r["specificity"] == 0.0 for r in off)
    assert all(0 <= r["efficacy"] <= 1 and 0 <= r["loc_accuracy"] <= 1 for r in again)


# ---------------------------------------------------------------- edit metrics
def test_edit_metrics_from_a_real_edit(tok, tmp_path):
    model = tiny("gpt2")
    before = snapshot(model)
    reqs = load("counterfact:val", n=2).requests()
    editor = Editor(objective="emmet", alpha=0.0, layers=[2], cache_dir=str(tmp_path), **FAST)
    with editor.applied(model, tok, reqs) as edit:
        m = edit_metrics(edit)
        (u,) = edit.updates
        assert m["delta_norm"] == {"2": pytest.approx(float(u.delta.norm()))}
        assert m["memorization_error"] < 1e-6 and m["final_memorization_error"] < 1e-6
        assert m["preservation"] == pytest.approx(edit.info["preservation"][0])
    assert same(before, snapshot(model))
    rome = Editor(objective="rome", constraint_key="average", layers=[2], cache_dir=str(tmp_path), **FAST)
    with rome.applied(model, tok, reqs) as edit:
        m = edit_metrics(edit)
        assert m["n_updates"] == 2 and m["memorization_error"] < 1e-6
        total = edit.updates[0].delta + edit.updates[1].delta
        assert m["delta_norm"]["2"] == pytest.approx(float(total.norm()))
        # the first edit, measured with the final weights, carries the second one's change too
        first = edit.updates[0]
        e0 = float(((total @ first.keys - first.residual).norm() / first.values.norm()))
        assert m["final_memorization_error"] == pytest.approx(e0 / 2, rel=1e-6, abs=1e-12)


# ---------------------------------------------------------------- loaders
def test_loaders_read_local_data():
    cf = load("counterfact:val", start=2, n=3)
    assert cf.kind == "counterfact" and len(cf) == 3 and cf.start == 2
    r = cf.requests()[0]
    assert "{}" in r.prompt and r.target_true and r.paraphrase_prompts and r.neighborhood_prompts
    z = load("zsre", n=2)
    zr = z.requests()[0]
    assert z.kind == "zsre" and zr.neighborhood_answer and zr.paraphrase_prompts
    k = load("knowns", n=5)
    assert k.kind == "knowns" and {"subject", "attribute", "prompt"} <= set(k.records[0])
    with pytest.raises(ValueError, match="facts, not edit requests"):
        k.requests()
    with pytest.raises(ValueError, match="cannot take"):
        load("counterfact:val", n=10**6)


def test_rome_format_counterfact_matches_flat(tmp_path):
    rome = [{
        "case_id": 7,
        "requested_rewrite": {"prompt": "{} plays the", "subject": "Toko Yasuda", "target_new": {"str": "piano", "id": "Q5994"},
                              "target_true": {"str": "guitar", "id": "Q6607"}, "relation_id": "P1303"},
        "paraphrase_prompts": ["Toko Yasuda is incredible at", "Toko Yasuda performs on the"],
        "neighborhood_prompts": ["John Lennon performs on the"],
        "generation_prompts": ["Toko Yasuda is known for"],
    }]
    path = tmp_path / "cf.json"
    path.write_text(json.dumps(rome))
    d = load(str(path))
    assert d.kind == "counterfact"
    (r,) = d.requests()
    assert (r.prompt, r.subject, r.target_new, r.target_true, r.case_id) == ("{} plays the", "Toko Yasuda", "piano", "guitar", 7)
    assert len(r.paraphrase_prompts) == 2 and d.generation_prompts() == [["Toko Yasuda is known for"]]
    flat = load("counterfact:val", n=1)
    assert flat.generation_prompts()[0][0] == flat.requests()[0].text  # stand-in: the edit prompt


def test_url_sources_resolve_without_network(tmp_path, monkeypatch):
    kind, where = resolve_source("counterfact:rome")
    assert kind == "counterfact" and where.startswith("https://rome.baulab.info/data/dsets/")
    # the download path, exercised with a file:// URL (no network)
    src = tmp_path / "src" / "zsre_small.json"
    src.parent.mkdir()
    src.write_text(json.dumps([{"src": "Q?", "subject": "Q", "alt": "x", "answers": ["y"]}]))
    monkeypatch.setenv("EDITKIT_CACHE", str(tmp_path / "cache"))
    local = fetch(src.as_uri())
    assert local.parent == tmp_path / "cache" / "data" and json.loads(local.read_text())[0]["alt"] == "x"
    assert guess_kind(read_records(local)[0]) == "zsre"


# ---------------------------------------------------------------- generation
def test_generate_left_padding_matches_alone(model, tok):
    prompts = ["Hi", "The capital of France is the city of"]
    both = generate(model, tok, prompts, top_k=1, max_new_tokens=5)
    alone = [generate(model, tok, [p], top_k=1, max_new_tokens=5)[0] for p in prompts]
    assert both == alone
    s1 = generate(model, tok, prompts, max_new_tokens=5, seed=3)
    assert s1 == generate(model, tok, prompts, max_new_tokens=5, seed=3)


def test_generation_metrics(model, tok):
    tf = TfIdf.fit(["the cat sat on the mat", "dogs bark at night"])
    rows = generation_metrics(model, tok, [["The cat"], ["A dog", "Dogs"]], references=["the cat sat", ""], tfidf=tf, max_len=8)
    assert len(rows) == 2 and len(rows[1]["texts"]) == 2
    assert rows[0]["texts"][0].startswith("The cat")
    assert 0 <= rows[0]["reference_score"] <= 1 and math.isnan(rows[1]["reference_score"])
    assert all(r["ngram_entropy"] >= 0 for r in rows)
