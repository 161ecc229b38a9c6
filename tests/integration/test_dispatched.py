"""Models dispatched by accelerate: with a block offloaded to disk (its weights on the meta device,
loaded by hooks for each forward), keys, targets and C0 run through the hooks, and an edit of the
layers kept on the CPU is bit-identical to the same edit of the plain model; the model identity
reads the offloaded weights; an offloaded layer is refused before anything is written."""

import pytest
from models import same, snapshot, tiny, tokenizer

from editkit import Editor, EditRequest, load_model
from editkit.models import model_identity

pytest.importorskip("accelerate")

REQS = [EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball")]
MAP = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h.0": "cpu", "transformer.h.1": "cpu",
       "transformer.h.2": "cpu", "transformer.h.3": "disk", "transformer.ln_f": "cpu", "lm_head": "cpu"}


def test_an_edit_through_offloaded_blocks_equals_the_plain_one(tmp_path):
    tiny("gpt2").save_pretrained(tmp_path / "m")
    tokenizer().save_pretrained(tmp_path / "m")
    plain, tok = load_model(str(tmp_path / "m"))
    split, _ = load_model(str(tmp_path / "m"), device_map=MAP, offload_folder=str(tmp_path / "offload"))
    assert split.transformer.h[3].mlp.c_proj.weight.device.type == "meta"
    assert model_identity(split) == model_identity(plain)
    kw = dict(objective="memit", strategy="spread", layers=[1, 2], steps=3, context="fixed", n_context=1, n_tokens=1500,
              max_len=64, cache_dir=str(tmp_path / "c0"), progress=False)
    deltas = []
    for model in (plain, split):
        before = snapshot(model)
        edit = Editor(**kw).edit(model, tok, REQS)
        deltas.append([u.delta for u in edit.updates])
        edit.undo()
        assert same(before, snapshot(model))
    assert all(a.equal(b) for a, b in zip(*deltas))
    before = snapshot(split)
    with pytest.raises(ValueError, match=r"layers \[3\] are offloaded"):
        Editor(**{**kw, "layers": [3]}).edit(split, tok, REQS)
    assert same(before, snapshot(split))
