"""Sequential editing: edits accumulate (no undo), checkpoints measure what they claim, and an
interrupted run resumes to the same records and weights."""


import pytest
import torch

from editkit import load_model
from editkit.architectures import read_weight
from editkit.edit import applied_edits
from editkit.editor import shipped_hparams
from editkit.models import TEACHING_MODEL
from editkit.sequential import SequentialSpec, edit_scores, read_runs, run_sequential, table

SPEC = dict(objective="memit", strategy="spread", batch_size=2, n_batches=2, every=1, n_other=4, scan=200,
            wiki_chunks=2, wiki_len=32, fixed={"steps": 3})


def _fresh():
    return load_model(TEACHING_MODEL)


def test_edits_accumulate_and_checkpoints_measure_the_model(tmp_path):
    model, tok = _fresh()
    layers = shipped_hparams(TEACHING_MODEL)["layers"]
    W0 = {l: read_weight(model, l).detach().double().clone() for l in layers}
    recs = run_sequential(SequentialSpec(**{**SPEC, "fixed": {}}), tmp_path / "run", model, tok, progress=False)  # the shipped steps
    assert [r["batches"] for r in recs] == [0, 1, 2] and [r["edits"] for r in recs] == [0, 2, 4]
    assert len(applied_edits(model)) == 2  # both batches still applied: cumulative
    assert recs[0]["unedited"]["ES"] == 0.0 and recs[0]["unedited"]["NS_kept"] == 1.0  # known facts, nothing moved yet
    assert all(v == 0.0 for v in recs[0]["weight_dist"].values())
    for l, d in recs[-1]["weight_dist"].items():  # what the model carries now
        assert d == pytest.approx(float((read_weight(model, int(l)).detach().double() - W0[int(l)]).norm()), rel=1e-9)
    assert recs[-1]["all"]["ES"] > 0  # the edits took
    # the checkpoint's scores are those of the model as it is now
    from editkit.sequential import known_cases, neighbour_prefs

    spec = SequentialSpec(**{**SPEC, "fixed": {}})
    edits, _ = known_cases(*_fresh(), spec)
    fresh_model, fresh_tok = _fresh()
    before = neighbour_prefs(fresh_model, fresh_tok, edits)
    now = edit_scores(model, tok, edits, before)
    assert now == pytest.approx(recs[-1]["all"], nan_ok=True)
    assert "memit+spread" in table(read_runs([tmp_path / "run"]))


def test_an_interrupted_run_resumes_to_the_same_records(tmp_path):
    model, tok = _fresh()
    full = run_sequential(SequentialSpec(**SPEC), tmp_path / "a", model, tok, progress=False)
    final = {l: read_weight(model, l).detach().clone() for l in (1, 2, 3)}
    model, tok = _fresh()
    run_sequential(SequentialSpec(**SPEC), tmp_path / "b", model, tok, progress=False)
    # interrupt after the first batch: its checkpoint and edit stay, the second's are gone
    import shutil

    shutil.rmtree(tmp_path / "b" / "edits" / "1")
    lines = (tmp_path / "b" / "records.jsonl").read_text().splitlines()
    (tmp_path / "b" / "records.jsonl").write_text("\n".join(lines[:2]) + "\n")
    model, tok = _fresh()
    resumed = run_sequential(SequentialSpec(**SPEC), tmp_path / "b", model, tok, progress=False)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "edit_seconds"} for r in rs]  # noqa: E731
    assert strip(resumed) == strip(full)
    assert all(torch.equal(read_weight(model, l), final[l]) for l in (1, 2, 3))
    with pytest.raises(ValueError, match="another run"):
        run_sequential(SequentialSpec(**{**SPEC, "batch_size": 3}), tmp_path / "b", model, tok, progress=False)


@pytest.mark.parametrize("lost", ["edits/1", "edits"])
def test_a_resume_drops_checkpoints_past_the_saved_edits(tmp_path, monkeypatch, lost):
    """The records of batches whose edits are gone are dropped from records.jsonl, and the edit
    time restarts from the last kept checkpoint (each edit here takes one tick of a fake clock)."""
    import itertools
    import json
    import shutil
    from types import SimpleNamespace

    import editkit.sequential as seq

    ticks = itertools.count()
    monkeypatch.setattr(seq, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))  # only run_sequential's clock
    model, tok = _fresh()
    full = run_sequential(SequentialSpec(**SPEC), tmp_path / "a", model, tok, progress=False)
    assert [r["edit_seconds"] for r in full] == [0, 1, 2]
    shutil.rmtree(tmp_path / "a" / lost)
    model, tok = _fresh()
    resumed = run_sequential(SequentialSpec(**SPEC), tmp_path / "a", model, tok, progress=False)
    assert [r["batches"] for r in resumed] == [0, 1, 2] and [r["edit_seconds"] for r in resumed] == [0, 1, 2]
    lines = (tmp_path / "a" / "records.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == resumed  # the file holds each checkpoint once


def test_too_few_known_cases_is_named(tmp_path):
    model, tok = _fresh()
    with pytest.raises(ValueError, match="cases the model knows"):
        run_sequential(SequentialSpec(**{**SPEC, "scan": 5}), tmp_path / "c", model, tok, progress=False)
    assert not applied_edits(model)


def test_a_collapsed_model_ends_the_run_with_a_stopped_record(tmp_path, monkeypatch):
    from editkit.editor import EditDidNotTakeError, Editor

    real = Editor.edit
    calls = []

    def edit(self, model, tok, requests):
        calls.append(1)
        if len(calls) == 2:
            raise EditDidNotTakeError("the edit cannot take")
        return real(self, model, tok, requests)

    monkeypatch.setattr(Editor, "edit", edit)
    model, tok = _fresh()
    recs = run_sequential(SequentialSpec(**SPEC), tmp_path / "d", model, tok, progress=False)
    assert [r["batches"] for r in recs] == [0, 1, 1] and "cannot take" in recs[-1]["stopped"]
    assert len(applied_edits(model)) == 1  # the first batch stays; nothing of the second was written
    again = run_sequential(SequentialSpec(**SPEC), tmp_path / "d", *_fresh(), progress=False)  # a rerun does not go past it
    assert again == recs
    assert "stopped at 2" in table(read_runs([tmp_path / "d"]))
