"""The Editor end to end on tiny random models: constraints, undo, save/load, bad input."""

import json

import pytest
import torch
from models import same, snapshot, tiny, tokenizer

import editkit.stats as stats_mod
from editkit import Edit, Editor, EditRequest
from editkit.architectures import read_weight
from editkit.edit import EditStateError
from editkit.linalg import SingularSystemError
from editkit.tokens import SubjectNotFoundError

REQS = [
    EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    EditRequest(prompt="The capital of {} is", subject="France", target_new="Rome", target_true="Paris"),
    EditRequest(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden"),
]
FAST = dict(steps=4, n_context=2, context_len=4, n_tokens=1500, max_len=64, progress=False)


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture
def cache(tmp_path):
    return dict(cache_dir=str(tmp_path / "cache"))


def editor(cache, **kw):
    return Editor(**{**FAST, **cache, **kw})


@pytest.mark.parametrize("family", ["gpt2", "gptj", "gpt_neox", "llama"])
def test_emmet_alpha0_single_layer_meets_constraint(family, tok, cache):
    model = tiny(family)
    before = snapshot(model)
    edit = editor(cache, objective="emmet", alpha=0.0, layers=[2]).edit(model, tok, REQS)
    (u,) = edit.updates
    W = read_weight(model, 2).detach().double()
    err = (W @ u.keys - u.values).norm(dim=0) / u.values.norm(dim=0)
    assert float(err.max()) < 1e-5
    assert not same(before, snapshot(model))
    edit.undo()
    assert same(before, snapshot(model))


def test_edit_raises_target_probability(tok, cache):
    """In a random model attention does not carry the subject to the last token, so the prompts
    end with the subject: δ then acts on the predicting position directly; and a random model's
    residual stream is so small that the ‖δ‖²/‖h‖² and KL terms would dominate, so they are off.
    (The teaching-model tests check efficacy with the default loss on prompts of the usual shape.)"""
    from editkit.scoring import target_logprob

    model = tiny("gpt2")
    reqs = [
        EditRequest(prompt="The sport played by {}", subject="Michael Jordan", target_new="baseball"),
        EditRequest(prompt="The city that is the capital of {}", subject="France", target_new="Rome"),
    ]
    prompts, targets = [r.text for r in reqs], [r.target_new for r in reqs]
    lp0 = target_logprob(model, tok, prompts, targets)
    with editor(cache, objective="emmet", alpha=0.0, layers=[2], steps=15, lr=0.1, weight_decay=0.0, kl_factor=0.0).applied(model, tok, reqs):
        lp1 = target_logprob(model, tok, prompts, targets)
    assert (lp1 > lp0 + 0.05).all()
    assert torch.equal(target_logprob(model, tok, prompts, targets), lp0)


@pytest.mark.parametrize("objective", ["rome", "emmet", "memit", "alphaedit"])
@pytest.mark.parametrize("distribute", [False, True])
def test_every_pair_runs_and_undoes_bit_exactly(objective, distribute, tok, cache):
    model = tiny("gpt2")
    before = snapshot(model)
    hp = {"null_threshold": 0.5, "threshold_scale": "relative", "beta": 1.0} if objective == "alphaedit" else {}
    edit = editor(cache, objective=objective, distribute=distribute, layers=[1, 2], **hp).edit(model, tok, REQS[:2])
    assert edit.layers == ([1, 2] if distribute else [2])
    n_updates = (2 if objective == "rome" else 1) * (2 if distribute else 1)
    assert len(edit.updates) == n_updates
    assert not same(before, snapshot(model))
    edit.undo()
    assert same(before, snapshot(model))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_undo_is_bit_exact_in_half_precision(dtype, tok, cache):
    model = tiny("gpt2").to(dtype)
    before = snapshot(model)
    edit = editor(cache, objective="memit", distribute=True, layers=[1, 2]).edit(model, tok, REQS)
    assert not same(before, snapshot(model))
    edit.undo()
    assert same(before, snapshot(model))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_edited_model_exported_with_save_pretrained_reloads_bit_identical(dtype, tok, cache, tmp_path):
    """The engineer's path: edit, `save_pretrained` (safetensors), reload; the dtype is kept."""
    from transformers import AutoModelForCausalLM

    model = tiny("gpt2").to(dtype)
    editor(cache, objective="memit", distribute=True, layers=[1, 2]).edit(model, tok, REQS)
    edited = snapshot(model)
    model.save_pretrained(tmp_path / "m", safe_serialization=True)
    assert (tmp_path / "m" / "model.safetensors").exists() and not list((tmp_path / "m").glob("*.bin"))
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=dtype)
    assert next(again.parameters()).dtype == dtype and same(edited, snapshot(again))


def test_applied_context_undoes_on_exception(tok, cache):
    model = tiny("gpt2")
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with editor(cache, layers=[2]).applied(model, tok, REQS):
            assert not same(before, snapshot(model))
            raise RuntimeError("boom")
    assert same(before, snapshot(model))


def test_save_load_apply_gives_identical_weights(tok, cache, tmp_path):
    model = tiny("gpt2")
    edit = editor(cache, objective="emmet", distribute=True, layers=[1, 2]).edit(model, tok, REQS)
    edited = snapshot(model)
    edit.save(tmp_path / "e")
    assert json.loads((tmp_path / "e" / "edit.json").read_text())["config"]["objective"] == "emmet"
    edit.undo()
    other = tiny("gpt2")
    Edit.load(tmp_path / "e").apply(other)
    assert same(edited, snapshot(other))
    loaded = Edit.load(tmp_path / "e")
    for a, b in zip(edit.updates, loaded.updates):
        assert torch.equal(a.delta, b.delta) and torch.equal(a.keys, b.keys) and a.delta.dtype == torch.float64


def test_out_of_order_undo_is_refused(tok, cache):
    model = tiny("gpt2")
    before = snapshot(model)
    ed = editor(cache, objective="memit", layers=[2])
    first = ed.edit(model, tok, REQS[:1])
    second = ed.edit(model, tok, REQS[1:2])
    with pytest.raises(EditStateError, match="Undo later edits first"):
        first.undo()
    second.undo()
    first.undo()
    assert same(before, snapshot(model))


def test_forced_out_of_order_undo_invalidates_later_edits(tok, cache):
    """first.undo(force=True) restores the weights from before `first`; `second`, applied after
    it on the same layer, can then not be undone (its backup would bring `first` back)."""
    model = tiny("gpt2")
    before = snapshot(model)
    ed = editor(cache, objective="memit", layers=[2])
    first = ed.edit(model, tok, REQS[:1])
    second = ed.edit(model, tok, REQS[1:2])
    other = editor(cache, objective="memit", layers=[1]).edit(model, tok, REQS[2:3])  # another layer: unaffected
    first.undo(force=True)
    assert not second.applied and other.applied
    for force in (False, True):
        with pytest.raises(EditStateError, match="can no longer be undone"):
            second.undo(force=force)
    other.undo()
    assert same(before, snapshot(model))


def test_an_edit_refuses_weights_it_was_not_made_for(tok, cache, tmp_path):
    model = tiny("gpt2")
    before = snapshot(model)
    edit = editor(cache, objective="memit", layers=[2]).edit(model, tok, REQS[:1])
    edit.save(tmp_path / "e")
    edit.undo()
    a, b = Edit.load(tmp_path / "e"), Edit.load(tmp_path / "e")
    a.apply(model)
    with pytest.raises(EditStateError, match="already carries this or another edit"):
        b.apply(model)  # two loaded copies do not stack
    a.undo()
    assert same(before, snapshot(model))
    stranger = tiny("gpt2", seed=1)
    theirs = snapshot(stranger)
    with pytest.raises(EditStateError, match="made for other weights at layers \\[2\\]"):
        b.apply(stranger)
    assert same(theirs, snapshot(stranger))
    b.apply(stranger, force=True).undo()  # forced: applied, and undone exactly
    assert same(theirs, snapshot(stranger))


def test_sequential_edits_preserve_earlier_keys(tok, cache):
    """MEMIT's K_p: with earlier keys preserved, a second edit disturbs the first edit's values less."""
    drift = {}
    for keep in (True, False):
        model = tiny("gpt2")
        ed = editor(cache, objective="memit", layers=[2], keep_edited_keys=keep, mom2_weight=1.0)
        first = ed.edit(model, tok, REQS[:1])
        second = ed.edit(model, tok, REQS[1:])
        k1 = first.updates[0].keys
        drift[keep] = float((second.updates[0].delta @ k1).norm())
    assert drift[True] < 0.5 * drift[False]


def test_stats_cache_is_reused_and_rebuilt_after_corruption(tok, cache, monkeypatch):
    calls = []
    real = stats_mod.collect
    monkeypatch.setattr(stats_mod, "collect", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = tiny("gpt2")
    editor(cache, layers=[2]).edit(model, tok, REQS[:1]).undo()
    editor(cache, layers=[2]).edit(model, tok, REQS[:1]).undo()
    assert len(calls) == 1
    (entry,) = list((stats_mod.Path(cache["cache_dir"])).glob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:-100])  # truncate
    editor(cache, layers=[2]).edit(model, tok, REQS[:1]).undo()
    assert len(calls) == 2
    meta = entry.with_suffix(".json")
    key = json.loads(meta.read_text())
    key["key"]["n_tokens"] = 7  # mismatched key in the sidecar
    meta.write_text(json.dumps(key))
    editor(cache, layers=[2]).edit(model, tok, REQS[:1]).undo()
    assert len(calls) == 3


def test_stats_key_changes_with_what_changes_the_result(tok, cache):
    model = tiny("gpt2")
    cfg = Editor(**FAST, **cache).config.stats
    base = stats_mod.cache_key(model, 2, cfg)
    for change in (dict(n_tokens=999), dict(max_len=32), dict(dtype="float64"), dict(n_docs=10), dict(max_len=None)):
        assert stats_mod.entry_name(stats_mod.cache_key(model, 2, cfg.model_copy(update=change))) != stats_mod.entry_name(base)
    assert stats_mod.cache_key(tiny("gpt2", seed=1), 2, cfg)["model"] != base["model"]
    assert stats_mod.cache_key(model, 1, cfg) != base


def test_original_statistics_recipe_counts_documents_at_the_model_context(tok):
    """recipe="original": the first n_docs documents, each cut at the model's context (rome/layer_stats.py)."""
    from editkit.config import StatsConfig

    cfg = StatsConfig(recipe="original")
    assert (cfg.n_docs, cfg.max_len, cfg.dtype) == (100_000, None, "float32")
    assert StatsConfig(recipe="original", n_docs=3).n_docs == 3  # what is given explicitly stays
    model = tiny("gpt2")
    model.config.n_positions = 48
    assert stats_mod.chunk_len(model, StatsConfig(recipe="original")) == 48
    docs = list(stats_mod.documents("wikipedia"))[:3]
    want = [tok(d, add_special_tokens=False)["input_ids"][:48] for d in docs]
    got = list(stats_mod.token_chunks(tok, "wikipedia", 48, 10**9, n_docs=3))
    assert got == [w for w in want if len(w) >= 2]


# ---------------------------------------------------------------- bad input leaves the model untouched
def bad(model, tok, cache, requests, exc, match, **kw):
    before = snapshot(model)
    with pytest.raises(exc, match=match):
        editor(cache, **kw).edit(model, tok, requests)
    assert same(before, snapshot(model))


def test_subject_missing_from_prompt(tok, cache):
    with pytest.raises(ValueError, match="does not occur in prompt"):
        EditRequest(prompt="The capital is", subject="France", target_new="Rome")


def test_subject_lost_by_tokenisation(tok, cache):
    class Dropping:  # a tokenizer that silently drops the subject's characters (unknown script)
        def __init__(self, t):
            self.t = t

        def __getattr__(self, name):
            return getattr(self.t, name)

        def __call__(self, text, **kw):
            out = self.t(text, **{**kw, "return_offsets_mapping": True})
            s = text.find("France")
            keep = [i for i, (a, b) in enumerate(out["offset_mapping"]) if s < 0 or b <= s or a >= s + 6]
            res = {k: [v[i] for i in keep] for k, v in out.items()}
            if not kw.get("return_offsets_mapping"):
                res.pop("offset_mapping")
            return res

    bad(tiny(), Dropping(tok), cache, REQS[1:2], SubjectNotFoundError, "after tokenisation", layers=[2])


def test_empty_target_and_target_without_tokens(tok, cache):
    with pytest.raises(ValueError, match="target_new is empty"):
        EditRequest(prompt="{} is", subject="France", target_new="  ")

    class Empty:
        def __init__(self, t):
            self.t = t

        def __getattr__(self, name):
            return getattr(self.t, name)

        def __call__(self, text, **kw):
            out = self.t(text, **kw)
            if text.strip() == "Rome":
                out = {k: [] for k in out}
            return out

    bad(tiny(), Empty(tok), cache, REQS[1:2], ValueError, "tokenises to nothing", layers=[2])


def test_layers_out_of_range(tok, cache):
    bad(tiny(), tok, cache, REQS, ValueError, "out of range: this model has 4 layers", layers=[2, 7])


def test_unknown_objective_and_hyperparameter():
    with pytest.raises(ValueError, match="known objectives: alphaedit, emmet, encore, memit, rome"):
        Editor(objective="grace")
    with pytest.raises(ValueError, match="no setting"):
        Editor(objective="memit", alpha=0.1)


def test_objectives_bring_their_reference_conventions_and_explicit_settings_win():
    rome, memit, alpha = (Editor(objective=o).config for o in ("rome", "memit", "alphaedit"))
    assert (rome.target.delta_module, rome.target.context, rome.constraint_key, rome.target.clamp_factor) == ("mlp", "rome", "plain", 4.0)
    assert (memit.target.delta_module, memit.target.context, memit.constraint_key, memit.target.clamp_factor) == ("block", "memit", "average", 0.75)
    assert (rome.keep_edited_keys, memit.keep_edited_keys, alpha.keep_edited_keys) == (False, False, True)
    assert Editor(objective="memit").objective.config.mom2_weight == 20000.0 and Editor(objective="emmet").objective.config.mom2_weight == 1000.0
    mine = Editor(objective="rome", clamp_factor=2.0, context="memit", constraint_key="average").config
    assert (mine.target.clamp_factor, mine.target.context, mine.constraint_key, mine.target.delta_module) == (2.0, "memit", "average", "mlp")
    from editkit.config import TargetConfig

    given = Editor(objective="rome", target=TargetConfig(delta_module="block")).config.target  # a whole group given: its set fields win
    assert given.delta_module == "block" and given.context == "rome"
    with pytest.raises(ValueError, match="needs an equality objective"):
        Editor(objective="memit", constraint_key="plain")
    assert TargetConfig(context="generated").context == "memit"  # the old name
    with pytest.raises(ValueError, match="exactly one"):
        TargetConfig(templates=[["{}"], ["no slot"]])


def test_singular_batch_with_alpha0(tok, cache):
    bad(tiny(), tok, cache, [REQS[0], REQS[0]], SingularSystemError, "duplicate", objective="emmet", alpha=0.0, layers=[2])


def test_nan_statistics_midway_through_spread_restore_everything(tok, cache):
    model = tiny()
    ed = editor(cache, objective="memit", distribute=True, layers=[1, 2])
    ed._preservation(model, tok, [1, 2])
    ed._stats[model][2].C0[0, 0] = float("nan")  # layer 1 is written before layer 2 fails
    before = snapshot(model)
    with pytest.raises(ValueError, match="NaN"):
        ed.edit(model, tok, REQS)
    assert same(before, snapshot(model))


def test_nan_keys(tok, cache):
    model = tiny()
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.bias[0] = float("nan")
    bad(model, tok, cache, REQS, ValueError, "NaN", layers=[2], n_tokens=200)


def test_unknown_architecture(tok, cache):
    from transformers import BertConfig, BertLMHeadModel

    model = BertLMHeadModel(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64, is_decoder=True))
    bad(model, tok, cache, REQS, ValueError, "Add one entry", layers=[1])


def test_non_finite_hyperparameters_and_a_strategy_name_for_distribute_are_refused():
    for bad_value in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite"):
            Editor(objective="emmet", alpha=bad_value)
        with pytest.raises(ValueError, match="finite"):
            Editor(objective="memit", clamp_factor=bad_value)
    with pytest.raises(ValueError, match="distribute is a switch.*strategy='spread'.*pmet, single, spread"):
        Editor(objective="memit", distribute="spread")
    with pytest.raises(ValueError, match="known strategies: pmet, single, spread"):
        Editor(objective="memit", strategy="spraed")
    with pytest.raises(ValueError, match="distribute=True means strategy='spread'"):
        Editor(objective="memit", distribute=True, strategy="pmet")
    assert Editor(objective="memit", strategy="spread").config == Editor(objective="memit", distribute=True).config
    assert Editor(objective="memit").config.strategy == "single" and not Editor(objective="memit").config.distribute


def test_an_edit_for_a_layer_the_model_lacks_names_the_layer_count(tok, cache):
    model = tiny("gpt2")  # 4 layers
    edit = editor(cache, layers=[3], fact_token="last").edit(model, tok, REQS[:1])  # the top block: δ at the last token reaches the target
    edit.undo()
    from transformers import GPT2Config, GPT2LMHeadModel

    small = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50257)).eval()
    before = snapshot(small)
    with pytest.raises(ValueError, match="this model has 2 layers"):
        edit.apply(small)
    assert same(before, snapshot(small))
    assert "conventions of: scalable-model-editing/unified-model-editing" in edit.report() and "target loss mean" in edit.report()


def test_an_edit_whose_targets_move_nothing_raises_and_writes_nothing(tok, cache):
    """δ at the top block's subject token reaches no target token: the target NLL cannot fall
    (the README snippet on a model whose last edited layer is its top block)."""
    from editkit.editor import EditDidNotTakeError

    model = tiny("gpt2")  # 4 layers: layer 3 is the top block
    before = snapshot(model)
    with pytest.raises(EditDidNotTakeError, match="cannot take.*does not reach.*nothing was written"):
        editor(cache, objective="emmet", distribute=True, layers=[1, 2, 3]).edit(model, tok, REQS[:2])
    assert same(before, snapshot(model))
    e = editor(cache, objective="emmet", layers=[2]).edit(model, tok, REQS[:2])  # a layer with a path: it takes
    assert e.info["took"] == [True, True] and all(a > b for a, b in zip(e.info["target_nll_initial"], e.info["target_nll"]))
    e.undo()


def test_context_length_is_named_and_statistics_chunks_are_clipped(tok, cache):
    from transformers import GPT2Config, GPT2LMHeadModel

    from editkit.config import StatsConfig

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=50257, n_positions=16)).eval()
    before = snapshot(model)
    long = EditRequest(prompt="In a sentence that goes on and on for many words, far more than sixteen tokens, {} plays",
                       subject="Michael Jordan", target_new="baseball")
    with pytest.raises(ValueError, match="model's context is 16 tokens"):
        editor(cache, layers=[1]).edit(model, tok, [long])
    assert same(before, snapshot(model))
    assert stats_mod.chunk_len(model, StatsConfig(max_len=128)) == 16  # the default 128 clipped to the model


def test_a_broken_model_is_named_as_such(tok, cache):
    """NaN/Inf weights above the edited layer make the target NLL non-finite: a NonFiniteError
    that says so, not a claim that δ has no path; nothing is written."""
    from editkit.linalg import NonFiniteError

    model = tiny("gpt2")
    with torch.no_grad():
        model.transformer.h[3].mlp.c_proj.weight[0, 0] = float("inf")
    before = snapshot(model)
    with pytest.raises(NonFiniteError, match="target NLL is not finite before the edit"):
        editor(cache, objective="memit", layers=[1], context="fixed").edit(model, tok, REQS[:1])
    with pytest.raises(NonFiniteError, match="logits while generating context prefixes"):
        editor(cache, objective="memit", layers=[1]).edit(model, tok, REQS[:1])
    assert same(before, snapshot(model))
