"""Sweeps: grid expansion, one run = batches edited/evaluated/undone, resumability, reproducibility."""

import json

import pytest
from models import same, snapshot, tiny, tokenizer

from editkit.evaluation import evaluate, load
from editkit.report import markdown_table, plot
from editkit.sweep import Sweeper, SweepSpec, read_run_records, run_sweep

FAST = dict(steps=3, n_context=1, context="fixed", n_tokens=1500, max_len=64, layers=[1, 2])


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    return {**FAST, "cache_dir": str(tmp_path_factory.mktemp("stats"))}


def test_cases_per_run():
    spec = SweepSpec(n=5, batch_sizes=[1, 2, 4, 8])
    assert [spec.cases(b) for b in spec.batch_sizes] == [5, 6, 8, 8]


def test_grid_expansion_and_scoping():
    spec = SweepSpec(
        objectives=["emmet", "memit", "alphaedit"], strategies=["single", "spread"], batch_sizes=[1, 4],
        grid={"alpha": [0.0, 0.1], "memit.mom2_weight": [1.0, 10.0]},
        fixed={"steps": 3, "mom2_weight": 5.0, "alphaedit.beta": 2.0},
    )
    runs = spec.runs()
    by = lambda o: [r for r in runs if r["objective"] == o]  # noqa: E731
    assert len(by("emmet")) == 2 * 2 * 2  # alpha × strategies × batch sizes
    assert len(by("memit")) == 2 * 2 * 2  # its own mom2_weight grid; alpha is not its setting
    assert len(by("alphaedit")) == 2 * 2  # neither applies
    assert {r["kwargs"]["alpha"] for r in by("emmet")} == {0.0, 0.1} and all(r["kwargs"]["mom2_weight"] == 5.0 for r in by("emmet"))
    assert {r["kwargs"]["mom2_weight"] for r in by("memit")} == {1.0, 10.0}
    assert all(r["kwargs"] == {"steps": 3, "beta": 2.0} for r in by("alphaedit"))
    with pytest.raises(ValueError, match="not a setting"):
        SweepSpec(grid={"nonsense": [1]}).runs()
    with pytest.raises(ValueError):
        SweepSpec(objectives=["nope"])
    with pytest.raises(ValueError):
        SweepSpec(strategies=["sideways"])


def test_sweep_runs_resumes_and_reproduces(tok, fast, tmp_path):
    model = tiny("gpt2")
    before = snapshot(model)
    spec = SweepSpec(model="tiny", dataset="counterfact:val", n=2, objectives=["emmet"], strategies=["single"],
                     batch_sizes=[1, 2], fixed={**fast, "alpha": 0.0}, seed=3)
    out = tmp_path / "runs.jsonl"
    records = run_sweep(spec, out, model, tok, progress=False)
    assert same(before, snapshot(model))  # every batch undone
    assert [r["batch_size"] for r in records] == [1, 2]
    assert [r["n_batches"] for r in records] == [2, 1]
    lines = read_run_records(out)
    assert [r["kind"] for r in lines] == ["baseline", "run", "run"]
    r = records[0]
    assert r["config"]["objective"] == "emmet" and r["config"]["hparams"]["alpha"] == 0.0 and r["config"]["seed"] == 3
    assert r["dataset"]["dataset"] == "counterfact:val" and r["n_cases"] == 2 and r["version"]
    assert "unified-model-editing" in r["reference"] and r["config"]["target"]["delta_module"] == "block"  # which conventions made it
    assert r["edit"]["memorization_error"] < 1e-6  # α = 0: the constraints hold
    assert 0 <= r["metrics"]["efficacy_success"] <= 1 and r["metrics"]["n"] == 2
    # the baseline is the unedited model on the same cases
    base, _ = evaluate(model, tok, "counterfact", load("counterfact:val", n=2).requests())
    assert r["baseline"]["score"] == pytest.approx(base["score"]) and r["baseline"]["efficacy_magnitude"] == pytest.approx(base["efficacy_magnitude"])
    # resumable: nothing is rerun
    text = out.read_text()
    run_sweep(spec, out, model, tok, progress=False)
    assert out.read_text() == text
    # reproducible: the same config run again gives the same numbers
    sw = Sweeper(spec, tmp_path / "other.jsonl", model, tok, progress=False)
    again = sw.run_one(spec.runs()[0])
    assert again["hash"] == r["hash"] and again["metrics"] == r["metrics"] and again["edit"] == r["edit"]
    # keep_rows stores the per-request rows the metrics are the means of, under the same hash
    from editkit.evaluation.counterfact import summarise

    kept = Sweeper(spec.model_copy(update={"keep_rows": True}), tmp_path / "rows.jsonl", model, tok, progress=False).run_one(spec.runs()[1])
    assert kept["hash"] == records[1]["hash"] and "rows" not in records[1] and len(kept["rows"]) == 2
    assert summarise(kept["rows"]) == pytest.approx(kept["metrics"]) and kept["metrics"] == records[1]["metrics"]
    # a changed hyperparameter is a new run
    spec2 = spec.model_copy(update={"fixed": {**spec.fixed, "alpha": 0.5}, "batch_sizes": [2]})
    mine = run_sweep(spec2, out, model, tok, progress=False)
    assert [x["kind"] for x in read_run_records(out)] == ["baseline", "run", "run", "run"]  # baseline reused
    assert len(mine) == 1 and mine[0]["config"]["hparams"]["alpha"] == 0.5  # only this sweep's runs, not the file's


def test_zsre_sweep_measures_specificity_against_baseline(tok, fast, tmp_path):
    model = tiny("gpt2")
    spec = SweepSpec(dataset="zsre", n=2, objectives=["memit"], strategies=["spread"], batch_sizes=[2], fixed=fast)
    (r,) = run_sweep(spec, tmp_path / "z.jsonl", model, tok, progress=False)
    assert r["baseline"]["specificity"] == 1.0
    assert 0 <= r["metrics"]["specificity"] <= 1 and "efficacy" in r["metrics"] and "generalization" in r["metrics"]


def test_interrupted_line_is_ignored(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"kind": "run", "hash": "a"}) + "\n" + '{"kind": "run", "ha')
    assert read_run_records(p) == [{"kind": "run", "hash": "a"}]


def _record(obj, strat, b, es, base=0.1):
    return {"objective": obj, "strategy": strat, "batch_size": b, "n_cases": max(b, 4), "point": {},
            "metrics": {"efficacy_success": es, "score": es / 2}, "baseline": {"efficacy_success": base, "score": base},
            "edit": {"final_memorization_error": 0.1}, "seconds": {"edit_per_request": 0.5}}


def test_plots_and_table(tmp_path):
    recs = [_record(o, s, b, 1 / b) for o in ("rome", "emmet") for s in ("single", "spread") for b in (1, 4, 16)]
    paths = plot(recs, tmp_path / "plots")
    names = {p.name for p in paths}
    assert {"efficacy_success.png", "score.png", "final_memorization_error.png", "summary.png"} <= names
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    table = markdown_table(recs)
    lines = table.splitlines()
    assert lines[0].startswith("| objective | strategy") and "ES" in lines[0] and "S" in lines[0]
    assert sum(l.startswith("| (unedited)") for l in lines) == 2  # N = 4 and N = 16
    assert sum(l.startswith("| rome | spread") for l in lines) == 3
    assert "| emmet | single |  | 16 | 16 | 0.031 |" in table


def test_reused_targets_give_the_same_numbers(tok, fast, tmp_path):
    import editkit.editor as editor_mod

    original = editor_mod.compute_targets
    model = tiny("gpt2")
    spec = SweepSpec(dataset="counterfact:val", n=2, objectives=["emmet", "memit"], strategies=["single"], batch_sizes=[2],
                     fixed={**fast, "alpha": 0.0, "mom2_weight": 1.0}, reuse_targets=True)
    reused = run_sweep(spec, tmp_path / "b.jsonl", model, tok, progress=False)
    assert editor_mod.compute_targets is original  # the patch is gone
    assert [r["targets_reused"] for r in reused] == [0, 1]  # memit edits emmet's batch: same targets
    plain = Sweeper(spec.model_copy(update={"reuse_targets": False}), tmp_path / "a.jsonl", model, tok, progress=False)
    memit = plain.run_one(spec.runs()[1])
    assert memit["targets_reused"] == 0
    assert memit["hash"] == reused[1]["hash"] and memit["metrics"] == reused[1]["metrics"] and memit["edit"] == reused[1]["edit"]


def test_make_editor_starts_from_shipped_hparams(tmp_path):
    from editkit import load_model
    from editkit.editor import make_editor

    tiny("gpt2").save_pretrained(tmp_path)
    tokenizer().save_pretrained(tmp_path)
    model, _ = load_model(str(tmp_path))
    assert make_editor(model, "emmet", "single").config.layers is None  # no hparams.json: plain defaults
    (tmp_path / "hparams.json").write_text(json.dumps({"layers": [1, 2], "target": {"steps": 7}, "objectives": {"emmet": {"alpha": 0.3}}}))
    ed = make_editor(model, "emmet", "spread", steps=5)
    assert ed.config.layers == [1, 2] and ed.config.hparams["alpha"] == 0.3 and ed.config.target.steps == 5
    assert make_editor(model, "emmet", "spread", shipped_defaults=False).config.layers is None


def test_sweep_with_generation_metrics(tok, fast, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITKIT_CACHE", str(tmp_path / "cache"))  # the TF-IDF table is cached here
    corpus = tmp_path / "wiki"
    corpus.mkdir()
    doc = "The BBC is a broadcaster in London, and Sega makes video games and consoles in Japan."
    (corpus / "wiki_00").write_text(f'<doc id="1" title="x">\nx\n\n{doc}\n</doc>\n')
    model = tiny("gpt2")
    spec = SweepSpec(dataset="counterfact:val", n=1, objectives=["memit"], strategies=["single"], batch_sizes=[1],
                     fixed=fast, generation=True, generation_max_len=12, reference_corpus=str(corpus))
    (r,) = run_sweep(spec, tmp_path / "g.jsonl", model, tok, progress=False)
    assert r["eval"]["generation"] and r["metrics"]["ngram_entropy"] >= 0 and r["baseline"]["ngram_entropy"] >= 0
    assert 0 <= r["metrics"]["reference_score"] <= 1  # case 10's new object "Sega" is in the corpus
    assert list((tmp_path / "cache").glob("tfidf-*.json"))


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tok, fast, tmp_path):
    """EMMET with α = 0 on a batch that repeats one request is singular: recorded as failed,
    the model restored, the other runs done, and a resumed sweep does not retry it."""
    model = tiny("gpt2")
    before = snapshot(model)
    out = tmp_path / "runs.jsonl"
    spec = SweepSpec(model="tiny", dataset="counterfact:val", n=2, objectives=["emmet"], strategies=["single"],
                     batch_sizes=[1, 2], fixed={**fast, "alpha": 0.0}, seed=0)
    sw = Sweeper(spec, out, model, tok, progress=False)
    dup = sw.requests[0]
    sw.requests = [dup, dup]  # b = 2 puts the same key twice into one equality solve
    records = sw.run()
    assert same(before, snapshot(model))
    lines = read_run_records(out)
    failed = [r for r in lines if r["kind"] == "failed"]
    assert [r["batch_size"] for r in records] == [1] and [r["batch_size"] for r in failed] == [2]
    assert "SingularSystemError" in failed[0]["error"] and failed[0]["reference"]
    text = out.read_text()
    Sweeper(spec, out, model, tok, progress=False).run()  # resumed: neither run is repeated
    assert out.read_text() == text
