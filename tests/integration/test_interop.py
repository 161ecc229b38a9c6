"""The field's files: rome-layout key statistics (read, written, used by the editor without a
corpus pass) and the originals' hparams files (read into Editor settings, written back)."""

import json

import numpy as np
import pytest
import torch
from models import tiny, tokenizer

import editkit.stats as stats_mod
from editkit import Editor, EditRequest
from editkit.config import StatsConfig
from editkit.interop import find_npz, from_reference_hparams, npz_name, read_mom2_npz, to_reference_hparams, write_mom2_npz

MEMIT_GPT2XL = {  # hparams/MEMIT/gpt2-xl.json of kmeng01/memit, as its copies in AlphaEdit and unified-model-editing have it
    "layers": [13, 14, 15, 16, 17], "clamp_norm_factor": 0.75, "layer_selection": "all", "fact_token": "subject_last",
    "v_num_grad_steps": 20, "v_lr": 5e-1, "v_loss_layer": 47, "v_weight_decay": 0.5, "kl_factor": 0.0625, "mom2_adjustment": True,
    "mom2_update_weight": 20000, "rewrite_module_tmp": "transformer.h.{}.mlp.c_proj", "layer_module_tmp": "transformer.h.{}",
    "mlp_module_tmp": "transformer.h.{}.mlp", "attn_module_tmp": "transformer.h.{}.attn", "ln_f_module": "transformer.ln_f",
    "lm_head_module": "transformer.wte", "mom2_dataset": "wikipedia", "mom2_n_samples": 100000, "mom2_dtype": "float32",
}


def test_npz_round_trip_keeps_c0_and_their_keys(gen, tmp_path):
    X = torch.randn(6, 50, generator=gen, dtype=torch.float64)
    C0 = X @ X.T / 50
    p = write_mom2_npz(tmp_path / "s.npz", C0, count=50, sample_size=7)
    with np.load(p, allow_pickle=False) as z:
        assert set(z.keys()) == {"mom2.mom2", "mom2.count", "mom2.constructor", "sample_size"}
        assert int(z["mom2.count"]) == 50 and int(z["sample_size"]) == 7
        assert np.allclose(z["mom2.mom2"], (C0 * 50).numpy(), rtol=1e-6)  # the SUM, as SecondMoment keeps it
    back, count = read_mom2_npz(p)
    assert count == 50 and float((back - C0).norm() / C0.norm()) < 1e-6  # float32 storage


def test_the_editor_uses_npz_statistics_without_a_corpus_pass(tmp_path, monkeypatch):
    model, tok = tiny("gpt2"), tokenizer()
    C = stats_mod.collect(model, tok, [1, 2], StatsConfig(n_tokens=1500, max_len=64), progress=False)
    for l in (1, 2):
        write_mom2_npz(tmp_path / "gpt2" / "wikipedia_stats" / npz_name(model, l, "float64", 1500), C[l], count=1500, sample_size=1500, dtype="float64")
    assert find_npz(tmp_path, model, 1).name == "transformer.h.1.mlp.c_proj_float64_mom2_1500.npz"
    monkeypatch.setattr(stats_mod, "collect", lambda *a, **k: pytest.fail("the npz statistics were not used"))
    ed = Editor(objective="memit", strategy="spread", layers=[1, 2], steps=3, context="fixed", n_context=1, corpus=f"npz:{tmp_path}", progress=False)
    edit = ed.edit(model, tok, [EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball")])
    assert all(torch.equal(ed._stats[model][l].C0, C[l]) for l in (1, 2))
    edit.undo()
    with pytest.raises(FileNotFoundError, match="transformer.h.3.mlp.c_proj"):
        Editor(objective="memit", layers=[3], corpus=f"npz:{tmp_path}", progress=False).edit(model, tok, [EditRequest(
            prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball")])


def test_memit_hparams_file_reads_into_the_faithful_memit_settings(tmp_path):
    (tmp_path / "gpt2-xl.json").write_text(json.dumps(MEMIT_GPT2XL))
    objective, kw, ignored = from_reference_hparams(tmp_path / "gpt2-xl.json", objective="memit")
    assert objective == "memit" and kw["layers"] == [13, 14, 15, 16, 17] and kw["mom2_weight"] == 20000
    assert {"rewrite_module_tmp", "v_loss_layer", "layer_selection"} <= set(ignored)
    cfg = Editor(objective=objective, strategy="spread", **kw).config
    default = Editor(objective="memit", strategy="spread", layers=[13, 14, 15, 16, 17], recipe="original").config
    assert cfg.target == default.target  # the file's values are editkit's MEMIT defaults
    assert cfg.stats.n_docs == 100000 and cfg.stats.recipe == "original"
    # and back: editkit's settings under their names give the same Editor again
    out = to_reference_hparams(cfg, tiny("gpt2"))
    assert out["alg_name"] == "MEMIT" and out["mom2_update_weight"] == 20000 and out["rewrite_module_tmp"] == "transformer.h.{}.mlp.c_proj"
    again = Editor(objective="memit", strategy="spread", **from_reference_hparams(out)[1]).config
    assert again.target == cfg.target and again.hparams == cfg.hparams and again.layers == cfg.layers


def test_other_algorithms_and_easyedit_yaml(tmp_path):
    yaml_text = "alg_name: \"AlphaEdit\"\nmodel_name: \"./hugging_cache/gpt2-xl\"\nstats_dir: \"./data/stats\"\ndevice: 0\nlayers: [13, 14, 15, 16, 17]\n" \
                "v_lr: 5e-1\nv_num_grad_steps: 20\nnullspace_threshold: 2e-2\nL2: 10\nmom2_update_weight: 20000\nP_loc: \"./null_space_project.pt\"\n"
    (tmp_path / "a.yaml").write_text(yaml_text)
    objective, kw, ignored = from_reference_hparams(tmp_path / "a.yaml")
    assert objective == "alphaedit" and kw["null_threshold"] == 0.02 and kw["beta"] == 10 and kw["lr"] == 0.5  # "5e-1" read as a number
    assert "mom2_update_weight" not in kw  # AlphaEdit's update never reads it
    _, kw, _ = from_reference_hparams({"alg_name": "ENCORE", "prob_cutoff": -4, "update_norm_lambda": 10, "add_prev_edits": True})
    assert kw == {"mpes_hits": 4, "norm_weight": 10, "keep_edited_keys": True}
    _, kw, _ = from_reference_hparams({"alg_name": "EMMET", "emmet_lambda": 0.1, "mom2_update_weight": 1000, "update_norm_lambda": 0})
    assert kw == {"alpha": 0.1, "mom2_weight": 1000}
    with pytest.raises(ValueError, match="no editkit setting"):
        from_reference_hparams({"alg_name": "MEMIT", "secret_sauce": 1})
    with pytest.raises(ValueError, match="which algorithm"):
        from_reference_hparams({"layers": [1]})
