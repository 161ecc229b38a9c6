"""Lifelong-editing plug-ins, each against its definition: PMET's square-root spread, ENCORE's
solve and MPES stopping (against the plain reference), the RECT and PRUNE transforms (exact,
bit-exact undo, save/apply), and plug-ins registered from outside the package."""

import math

import plain_reference as plain
import pytest
import torch
from models import same, snapshot, tiny, tokenizer

from editkit import Edit, Editor, EditRequest
from editkit.config import TargetConfig
from editkit.distribution import STRATEGIES, Strategy
from editkit.distribution.spread import Spread
from editkit.objectives import OBJECTIVES, Objective, ObjectiveConfig, ObjectiveEntry
from editkit.targets import compute_targets

REQS = [
    dict(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    dict(prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English language"),
]
GROUPS = [["{}"], ["Alpha beta gamma. {}", "In the end, it was over. {}"]]
# the subject ends the prompt and the target is one token: on a random tiny model δ at the subject
# then reaches the target's logit directly, so target_new does become top-1 within a few steps
AT_END = [
    dict(prompt="The sport of {}", subject="Michael Jordan", target_new="baseball"),
    dict(prompt="The mother tongue of {}", subject="Danielle Darrieux", target_new="English"),
]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture
def stats(tmp_path_factory):
    return dict(n_tokens=1500, max_len=64, cache_dir=str(tmp_path_factory.mktemp("c0")))


def rel(a, b):
    return float((a - b).norm() / b.norm())


def test_encore_defaults_follow_its_code():
    ed = Editor(objective="encore", strategy="spread")
    assert ed.objective.config.mom2_weight == 20000.0 and ed.objective.config.norm_weight == 10.0
    assert ed.config.keep_edited_keys and ed.config.target.mpes_hits == 4
    assert "knowledge-editing-regularization" in ed.reference
    assert Editor(objective="encore", mpes_hits=0, keep_edited_keys=False).config.target.mpes_hits == 0  # explicit wins
    assert Editor(objective="memit").config.target.mpes_hits == 0  # MPES is ENCORE's, off elsewhere


@pytest.mark.parametrize("groups", [GROUPS, [["{}"]]], ids=["prefixed-rows", "plain-row-only"])
def test_mpes_stops_as_encores_counter_does(tok, groups):
    """δ and the number of Adam steps equal the plain reference with the same MPES rule; MPES
    does fire (fewer steps than without it)."""
    model = tiny("gpt2")
    kw = dict(steps=30, lr=0.1, clamp_factor=4.0, weight_decay=0.0, kl_factor=0.0, early_stop=0.0)
    cfg = TargetConfig(mpes_hits=3, **kw)
    reqs = [EditRequest(**r) for r in AT_END]
    got = compute_targets(model, tok, reqs, 2, groups, cfg, progress=False)
    without = compute_targets(model, tok, reqs, 2, groups, TargetConfig(**kw), progress=False)
    for i, r in enumerate(AT_END):
        taken = []
        z, h0 = plain.target(model, tok, r, 2, groups, steps=30, lr=0.1, clamp=4.0, wd=0.0, kl_factor=0.0, mpes=3, taken=taken)
        assert int(got.steps[i]) == taken[0] < int(without.steps[i])
        assert rel(got.Z[:, i] - got.H[:, i], z - h0) < 1e-5


def _edit(ed, model, tok, reqs):
    return ed.edit(model, tok, [EditRequest(**r) for r in reqs])


@pytest.mark.parametrize("transform", ["rect", "prune"])
def test_transformed_edits_undo_save_and_apply_bit_exactly(tok, stats, tmp_path, transform):
    model = tiny("gpt2")
    before = snapshot(model)
    ed = Editor(objective="memit", strategy="spread", layers=[1, 2], steps=3, context="fixed", n_context=1,
                transforms=[transform], progress=False, **stats)
    edit = _edit(ed, model, tok, REQS)
    after = snapshot(model)
    assert [u.layer for u in edit.updates if u.keys.shape[1] == 0] == [1, 2]  # one correction per written layer
    assert "transform" in edit.report()
    edit.save(tmp_path / "e")
    edit.undo()
    assert same(before, snapshot(model))
    again = Edit.load(tmp_path / "e").apply(model)
    assert same(after, snapshot(model))  # the saved edit is what the model carried
    again.undo()
    assert same(before, snapshot(model))


def test_prune_after_every_edit_is_post_hoc_prune_of_the_raw_total(tok, stats):
    """Two sequential edits with prune: W = W0 + prune(raw₁ + raw₂) at each layer, with the σ_max
    of the original weight; the raw changes are the solves each edit recorded."""
    model = tiny("gpt2")
    W0 = {l: plain.proj(model, l).weight.detach().double().T.clone() for l in (1, 2)}  # GPT-2 Conv1D: stored (d_in, d_out)
    ed = Editor(objective="memit", strategy="spread", layers=[1, 2], steps=3, context="fixed", n_context=1,
                mom2_weight=0.01, transforms=["prune"], progress=False, **stats)
    e1 = _edit(ed, model, tok, REQS[:1])
    e2 = _edit(ed, model, tok, REQS[1:])
    for l in (1, 2):
        raw = sum(u.delta for e in (e1, e2) for u in e.updates if u.layer == l and u.keys.shape[1] > 0)
        top = float(torch.linalg.matrix_norm(W0[l], ord=2))
        U, S, Vh = torch.linalg.svd(raw, full_matrices=False)
        S2 = torch.where(S >= top, S.log() - math.log(top) + top, S)
        want = W0[l] + (U * S2) @ Vh
        now = plain.proj(model, l).weight.detach().double().T
        assert rel(now, want) < 1e-6
    e2.undo()
    e1.undo()


def test_unknown_transform_is_named():
    with pytest.raises(ValueError, match="known transforms: prune, rect"):
        Editor(objective="memit", transforms=["prnue"])
    with pytest.raises(ValueError, match="keep"):
        Editor(objective="memit", transforms=[{"name": "rect", "keep": 1.5}])


# ---------------------------------------------------------------- plug-ins from outside
class HalfSpread(Spread):
    """A toy strategy: every layer takes half of what is still missing, the last one the rest."""

    name = "half"
    reference = "tests/test_lifelong.py"

    def share(self, remaining):
        return 1.0 if remaining == 1 else 0.5


class ScaledConfig(ObjectiveConfig):
    scale: float = 1.0


class Scaled(Objective):
    """A toy objective: ΔW = scale · R (Kᵀ K)⁻¹ Kᵀ (the minimum-norm exact solve, scaled)."""

    Config = ScaledConfig
    name = "scaled"

    def solve(self, K, R, pres):
        return self.config.scale * R @ torch.linalg.solve(K.T @ K, K.T)


@pytest.fixture
def plugins(monkeypatch):
    monkeypatch.setitem(STRATEGIES._entries, "half", HalfSpread)
    monkeypatch.setitem(OBJECTIVES._entries, "scaled", ObjectiveEntry(Scaled, {"scale": 1.0}, reference="tests"))


def test_plugins_registered_outside_run_through_editor_and_sweep(plugins, tok, stats, tmp_path):
    from editkit.sweep import SweepSpec, run_sweep

    assert issubclass(STRATEGIES.get("half"), Strategy)
    model = tiny("gpt2")
    before = snapshot(model)
    fast = dict(layers=[1, 2], steps=3, context="fixed", n_context=1, **stats)
    edit = Editor(objective="scaled", strategy="half", progress=False, **fast).edit(model, tok, [EditRequest(**REQS[0])])
    u1, u2 = edit.updates
    assert rel(u1.delta @ u1.keys, u1.residual) < 1e-10  # exact at the keys it was given
    H_left = u2.residual  # the last layer took what the first left: twice the first layer's share
    assert rel(u1.residual, H_left) < 0.5  # same order: half went to layer 1 (keys move a little)
    edit.undo()
    assert same(before, snapshot(model))
    spec = SweepSpec(model="tiny", dataset="counterfact:val", n=1, objectives=["scaled"], strategies=["half"],
                     batch_sizes=[1], fixed=fast, shipped_defaults=False)
    (record,) = run_sweep(spec, tmp_path / "runs.jsonl", model, tok, progress=False)
    assert record["objective"] == "scaled" and record["strategy"] == "half" and record.get("kind") != "failed"
    assert same(before, snapshot(model))
