"""The `editkit` command line on a tiny random GPT-2 saved to a folder."""

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from models import tiny, tokenizer

from editkit import Edit
from editkit.cli import SINGULAR_COND, main, parse_grid, parse_layers, parse_pairs
from editkit.sweep import read_run_records


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-gpt2")
    tiny("gpt2").save_pretrained(d)
    tokenizer().save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    cache = tmp_path_factory.mktemp("stats")
    return ["--no-progress", "--layers", "2", "--hparam", "steps=3", "--hparam", "n_context=1", "--hparam", "context=fixed", "--hparam", "n_tokens=1500",
            "--hparam", "max_len=64", "--hparam", f"cache_dir={cache}"]


def test_parsers():
    assert parse_layers("3,4,5") == parse_layers("3-5") == [3, 4, 5]
    assert parse_layers("7") == [7] and parse_layers(None) is None
    assert parse_pairs(["alpha=0.1", "serial=true", "context=fixed", "layers=[1,2]"]) == {
        "alpha": 0.1, "serial": True, "context": "fixed", "layers": [1, 2]}
    assert parse_grid(["alpha=0,0.1", "emmet.mom2_weight=[1, 10]"]) == {"alpha": [0, 0.1], "emmet.mom2_weight": [1, 10]}
    with pytest.raises(SystemExit):
        parse_pairs(["alpha"])


def test_edit_saves_edit_and_model(model_dir, fast, tmp_path, capsys):
    edit_dir, out_dir = tmp_path / "edit", tmp_path / "model"
    rc = main(["edit", "--model", model_dir, "--prompt", "{} plays the sport of", "--subject", "Michael Jordan",
               "--target", "baseball", "--true", "basketball", "--hparam", "alpha=0", *fast,
               "--save-edit", str(edit_dir), "--save-model", str(out_dir)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "P(new) before" in out and "P(true) after" in out and "Michael Jordan plays the sport of" in out
    assert "objective=emmet" in out  # the edit report
    edit = Edit.load(edit_dir)
    assert edit.config["hparams"]["alpha"] == 0 and edit.requests[0]["target_new"] == "baseball"
    from transformers import AutoModelForCausalLM

    original, edited = AutoModelForCausalLM.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(out_dir)
    w0, w1 = original.transformer.h[2].mlp.c_proj.weight, edited.transformer.h[2].mlp.c_proj.weight
    (u,) = edit.updates
    assert torch.allclose(w1 - w0, u.delta.T.float(), atol=1e-5)  # GPT-2's Conv1D stores Wᵀ
    assert torch.equal(original.transformer.h[1].mlp.c_proj.weight, edited.transformer.h[1].mlp.c_proj.weight)


def test_edit_from_requests_file_then_eval(model_dir, fast, tmp_path, capsys):
    from editkit.evaluation import load

    recs = load("counterfact:val", n=2).records
    (tmp_path / "reqs.json").write_text(json.dumps(recs))
    assert main(["edit", "--model", model_dir, "--requests", str(tmp_path / "reqs.json"), "--objective", "memit", *fast,
                 "--save-edit", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert main(["eval", "--model", model_dir, "--dataset", "counterfact:val", "--n", "2", "--edit", str(tmp_path / "e"),
                 "--no-progress", "--out", str(tmp_path / "res.json")]) == 0
    out = capsys.readouterr().out
    assert "efficacy_success" in out and "edited" in out and "memorization_error" in out
    res = json.loads((tmp_path / "res.json").read_text())
    assert set(res) >= {"unedited", "edited", "edit", "rows"} and res["dataset"]["n"] == 2
    assert res["edit"]["delta_norm"].keys() == {"2"}


def test_eval_zsre_unedited(model_dir, capsys):
    assert main(["eval", "--model", model_dir, "--dataset", "zsre", "--n", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "specificity" in out and "efficacy" in out


def test_sweep_command(model_dir, fast, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    args = ["sweep", "--model", model_dir, "--dataset", "counterfact:val", "--n", "1", "--objectives", "rome",
            "--strategies", "single", "--batch-sizes", "1", *fast, "--seed", "1",
            "--out", str(out), "--plots", str(tmp_path / "p"), "--table", str(tmp_path / "t.md")]
    assert main(args) == 0
    (run,) = [r for r in read_run_records(out) if r["kind"] == "run"]
    assert run["objective"] == "rome" and run["seed"] == 1 and run["config"]["target"]["steps"] == 3
    assert (tmp_path / "p" / "summary.png").exists() and "| rome | single |" in (tmp_path / "t.md").read_text()
    assert "| rome | single |" in capsys.readouterr().out
    assert main(["sweep", "--out", str(out), "--report-only"]) == 0


@pytest.mark.parametrize("command", ["sweep", "sequential", "trace"])
def test_plots_without_matplotlib_fail_before_any_work(command, model_dir, tmp_path, monkeypatch):
    """matplotlib is the `plots` extra: asking for pictures without it is refused up front, with
    the install named, and nothing is run (no sweep record written)."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    out = tmp_path / "s.jsonl"
    args = {"sweep": ["--dataset", "counterfact:val", "--n", "1", "--objectives", "rome", "--strategies", "single",
                      "--batch-sizes", "1", "--out", str(out), "--plots", str(tmp_path / "p")],
            "sequential": ["--out", str(tmp_path / "seq"), "--plots", str(tmp_path / "p")],
            "trace": ["--facts", "counterfact:val", "--n", "2", "--out", str(tmp_path / "t.png")]}[command]
    with pytest.raises(SystemExit, match=r'editkit\[plots\]'):
        main([command, "--model", model_dir, "--no-progress", *args])
    assert not out.exists() and not (tmp_path / "seq").exists() and not (tmp_path / "p").exists()


def test_stats_command(model_dir, tmp_path, capsys):
    assert main(["stats", "--model", model_dir, "--layers", "1", "--n-tokens", "800", "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tr C0" in out and str(tmp_path) in out
    assert len(list(tmp_path.glob("c0-*.safetensors"))) == 1


def test_stats_follows_the_models_hparams_and_names_bad_input(model_dir, tmp_path, capsys, caplog):
    """On the teaching model, `stats` with no flags uses the layers and statistics `edit` and
    `demo` use (hparams.json): its default layers over its own corpus, found shipped (no corpus pass)."""
    from editkit.editor import shipped_hparams

    layers = shipped_hparams("editkit-teach")["layers"]
    with caplog.at_level("INFO", logger="editkit.cli"):
        assert main(["stats", "--model", "editkit-teach", "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[2 : 2 + len(layers)]] == [str(l) for l in layers] and "editkit-teach/stats" in out
    assert "'corpus': 'editkit-teach'" in caplog.text and "'n_tokens': 400000" in caplog.text
    conds = [float(line.split()[3]) for line in out.splitlines()[2 : 2 + len(layers)]]
    assert ("singular" in out) == any(c > SINGULAR_COND for c in conds)  # a (numerically) singular C0 is explained, and only then
    assert not list(tmp_path.glob("c0-*"))
    corpus = tmp_path / "few.txt"  # 16 tokens: C0 of rank <= 16 over the tiny model's wider MLP keys
    corpus.write_text("the quick brown fox jumps over the lazy dog " * 20)
    assert main(["stats", "--model", model_dir, "--layers", "1", "--corpus", str(corpus), "--n-tokens", "16",
                 "--cache-dir", str(tmp_path / "few"), "--no-progress"]) == 0
    assert "numerically) singular" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="this model has 4 layers"):
        main(["stats", "--model", model_dir, "--layers", "9", "--no-progress"])
    import importlib.util

    if importlib.util.find_spec("datasets") is None:  # with `datasets` installed the name goes to the hub instead
        with pytest.raises(SystemExit, match=r'not a local folder or file.*pip install "editkit\[hub\]"'):
            main(["stats", "--model", model_dir, "--layers", "1", "--corpus", "nosuch-corpus", "--cache-dir", str(tmp_path), "--no-progress"])


def test_passthrough_to_demo(monkeypatch):
    seen = {}
    fake_demo = types.ModuleType("editkit.demo")
    fake_demo.main = lambda argv: seen.setdefault("demo", argv) and 0
    monkeypatch.setitem(sys.modules, "editkit.demo", fake_demo)
    assert main(["demo", "--x", "1"]) == 0 and seen["demo"] == ["--x", "1"]


def test_errors_are_messages(model_dir):
    with pytest.raises(SystemExit, match="unknown objective"):
        main(["edit", "--model", model_dir, "--objective", "nope", "--prompt", "{} is", "--subject", "A", "--target", "b"])
    with pytest.raises(SystemExit, match="--requests FILE"):
        main(["edit", "--model", model_dir])
    with pytest.raises(SystemExit, match="cannot load model"):
        main(["eval", "--model", "/nonexistent/model/dir", "--n", "1"])


def test_eval_validates_its_data_before_loading_the_model(monkeypatch):
    import editkit.cli as cli

    monkeypatch.setattr(cli, "_load", lambda args: pytest.fail("the model was loaded before the data settings were checked"))
    with pytest.raises(SystemExit, match="editkit eval: no data file at nosuch"):
        main(["eval", "--model", "editkit-teach", "--dataset", "nosuch", "--n", "2", "--no-progress"])
    with pytest.raises(SystemExit, match="CounterFact only.*zsre"):
        main(["eval", "--model", "editkit-teach", "--dataset", "zsre", "--n", "2", "--generation", "--no-progress"])


def test_demo_no_progress_prints_nothing_to_stderr(capsys):
    from editkit import demo
    from editkit.editor import shipped_hparams

    demo.main(["--no-progress", "--n", "1"])
    out, err = capsys.readouterr()
    assert f"written at layer(s) {shipped_hparams('editkit-teach')['layers']}" in out and err == ""  # no weight-loading bar, no warnings


def test_demo_runs_without_the_data_folder(monkeypatch, capsys, tmp_path):
    """The shipped model carries its demo cases, so `editkit demo` needs no ../shared/data."""
    from editkit import demo

    monkeypatch.setenv("EDITKIT_DATA", str(tmp_path / "nonexistent"))
    result = demo.main(["--no-progress", "--n", "1", "--single"])
    out, _ = capsys.readouterr()
    assert len(result["requests"]) == 1 and "written at layer(s) [" in out
    assert result["after"]["new"][0] > result["before"]["new"][0]  # the edit moved P(new)


def test_demo_without_cases_or_data_names_the_fix(monkeypatch, tmp_path):
    from editkit import demo

    monkeypatch.setenv("EDITKIT_DATA", str(tmp_path / "nonexistent"))
    monkeypatch.setattr(demo, "resolve", lambda name: str(tmp_path))  # a model folder with no demo_cases.json
    with pytest.raises(SystemExit, match="EDITKIT_DATA"):
        demo.candidate_requests("some-model")


def test_shipped_demo_cases_are_the_known_cases_of_the_data(monkeypatch):
    """demo_cases.json is what `--write-cases` selects from CounterFact for the shipped model."""
    from editkit import demo
    from editkit.models import ASSETS, TEACHING_MODEL

    shipped = demo.candidate_requests(TEACHING_MODEL)
    monkeypatch.setattr(demo, "resolve", lambda name: str(ASSETS / "no-such-model"))
    model, tok = demo.load_model(TEACHING_MODEL)
    fresh = demo.known_requests(model, tok, len(shipped), demo.candidate_requests(TEACHING_MODEL))
    assert [r.model_dump() for r in fresh] == [r.model_dump() for r in shipped]


def test_list_hparams_and_sequential_report(capsys, tmp_path):
    """`editkit list` shows every registered plug-in; `editkit hparams` reads an originals' file;
    `editkit sequential --report` tabulates run folders."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("encore", "memit", "pmet", "spread", "rect", "prune", "knowledge-editing-regularization"))
    (tmp_path / "h.json").write_text(json.dumps({"alg_name": "MEMIT", "layers": [1, 2], "v_lr": 0.5, "mom2_update_weight": 20000}))
    assert main(["hparams", str(tmp_path / "h.json")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["objective"] == "memit" and got["kwargs"] == {"layers": [1, 2], "lr": 0.5, "mom2_weight": 20000}
    runs = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "benchmarks" / "sequential" / "runs").glob("encore-*"))
    assert runs and main(["sequential", "--report", *runs, "--table", str(tmp_path / "t.md")]) == 0
    assert "encore+spread" in (tmp_path / "t.md").read_text()
