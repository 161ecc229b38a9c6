"""editkit's defaults reproduce the published algorithms' definitions: its fast paths against the
plain, slow reimplementation in plain_reference.py, on tiny random models of each family.

Keys at 1e-6 (float32 forwards, other batching); targets and whole edits at 1e-5 relative
(‖ΔW_editkit − ΔW_plain‖_F / ‖ΔW_plain‖_F per layer). The δ optimisation runs 3 steps (2 Adam
updates): on these tiny random models Adam's per-coordinate normalisation amplifies float32
rounding over longer runs (see test_targets_fastpath.py); the full 20-step comparison on a
full-size GPT-2 is benchmarks/faithfulness/check.py.
"""

import plain_reference as plain
import pytest
import torch
from models import tiny, tokenizer

from editkit import Editor, EditRequest
from editkit.config import StatsConfig, TargetConfig
from editkit.keys import ModelAccess
from editkit.stats import layer_stats
from editkit.targets import compute_targets

REQS = [
    dict(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    dict(prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English language"),
    dict(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden"),
]
MEMIT_GROUPS = [["{}"], ["Alpha beta gamma. {}", "In the end, it was over. {}", "Yes. {}"]]
ROME_TEMPLATES = ["{}", "Alpha beta gamma. {}", "In the end, it was over. {}"]
LAYERS = [1, 2]
STEPS = 3
FAMILIES = ["gpt2", "gptj", "gpt_neox", "llama"]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    return dict(n_tokens=1500, max_len=64, cache_dir=str(tmp_path_factory.mktemp("c0")))


def C0s(model, tok, stats):
    return layer_stats(model, tok, LAYERS, StatsConfig(**stats), progress=False)


def rel(a, b):
    return float((a - b).norm() / b.norm())


def editor(objective, distribute, stats, templates, **kw):
    return Editor(objective=objective, distribute=distribute, layers=LAYERS, steps=STEPS, templates=templates, progress=False, **stats, **kw)


def tcfg(objective="memit"):
    """The plain side's target settings: the published defaults editkit claims for the objective."""
    t = Editor(objective=objective).config.target
    return dict(steps=STEPS, lr=t.lr, clamp=t.clamp_factor, wd=t.weight_decay, kl_factor=t.kl_factor)


# ---------------------------------------------------------------- the pieces
@pytest.mark.parametrize("groups", [MEMIT_GROUPS, [ROME_TEMPLATES]], ids=["memit-groups", "rome-one-group"])
def test_keys_are_the_grouped_average(family, tok, groups):
    model = tiny(family)
    reqs = [EditRequest(**r) for r in REQS]
    for cache in (2**31, 0):  # cached block inputs and the plain path
        access = ModelAccess(model, tok, reqs, groups, batch_size=4, cache_bytes=cache)
        for l in LAYERS:
            mine = access.keys(l)
            ref = torch.stack([plain.key(model, tok, r, l, groups) for r in REQS], 1)
            assert rel(mine, ref) < 1e-6
    assert rel(access.plain_keys(2), torch.stack([plain.at_plain(model, tok, r, plain.proj(model, 2), True) for r in REQS], 1)) < 1e-6


def test_memit_key_weighs_the_plain_prompt_half(tok):
    """memit/compute_ks: mean within each group, then across groups: plain ½, each prefix ⅙ here."""
    model = tiny("gpt2")
    r = REQS[0]
    ks = [plain.key(model, tok, r, 1, [[t]]) for t in ["{}"] + MEMIT_GROUPS[1]]
    want = 0.5 * ks[0] + sum(ks[1:]) / 6
    got = ModelAccess(model, tok, [EditRequest(**r)], MEMIT_GROUPS).keys(1)[:, 0]
    assert rel(got, want) < 1e-6 and rel(got, torch.stack(ks).mean(0)) > 1e-3


@pytest.mark.parametrize("objective", ["memit", "rome"])
def test_targets_follow_compute_z_and_compute_v(family, tok, objective):
    """δ at the block output (compute_z) or the MLP output (compute_v), KL at the subject of
    "{} is a", weight decay ‖δ‖/‖h‖², clamp relative to the same h, Adam, early stop."""
    model = tiny(family)
    cfg = Editor(objective=objective, steps=STEPS).config.target
    groups = MEMIT_GROUPS if objective == "memit" else [ROME_TEMPLATES]
    got = compute_targets(model, tok, [EditRequest(**r) for r in REQS], 2, groups, cfg, progress=False)
    at = "block" if objective == "memit" else "mlp"
    for i, r in enumerate(REQS):
        z, h0 = plain.target(model, tok, r, 2, groups, at=at, **tcfg(objective))
        assert rel(got.Z[:, i] - got.H[:, i], z - h0) < 1e-5  # δ itself, not only H + δ


def test_clamp_is_relative_to_the_mlp_output_for_rome(tok):
    """With a clamp that binds, ‖δ‖ = clamp · ‖MLP output‖ (ROME) vs clamp · ‖block output‖ (MEMIT)."""
    model = tiny("gpt2")
    reqs = [EditRequest(**REQS[0])]
    mlp_out = plain.at_plain(model, tok, REQS[0], plain.mlp(model, 2), False)
    blk_out = plain.at_plain(model, tok, REQS[0], plain.block(model, 2), False)
    for module, h in (("mlp", mlp_out), ("block", blk_out)):
        cfg = TargetConfig(steps=4, clamp_factor=0.01, weight_decay=0.0, delta_module=module)
        t = compute_targets(model, tok, reqs, 2, ["{}"], cfg, progress=False)
        assert float((t.Z - t.H).norm()) == pytest.approx(0.01 * float(h.norm()), rel=1e-5)


# ---------------------------------------------------------------- whole edits
@pytest.mark.parametrize("n", [1, 3])
def test_memit_spread(family, tok, stats, n):
    model = tiny(family)
    C = C0s(model, tok, stats)
    ed = editor("memit", True, stats, MEMIT_GROUPS)
    mine = ed.edit(model, tok, REQS[:n])
    mine.undo()
    ref = plain.memit_like(model, tok, REQS[:n], LAYERS, MEMIT_GROUPS, plain.memit_solve(C, ed.objective.config.mom2_weight), tcfg())
    for u, dW in zip(mine.updates, ref):
        assert rel(u.delta, dW) < 1e-5


@pytest.mark.parametrize("distribute", [False, True])
@pytest.mark.parametrize("n", [1, 3])
def test_emmet(family, tok, stats, distribute, n):
    model = tiny(family)
    C = C0s(model, tok, stats)
    ed = editor("emmet", distribute, stats, MEMIT_GROUPS)
    mine = ed.edit(model, tok, REQS[:n])
    mine.undo()
    hp = ed.objective.config
    layers = LAYERS if distribute else LAYERS[-1:]
    ref = plain.memit_like(model, tok, REQS[:n], layers, MEMIT_GROUPS, plain.emmet_solve(C, hp.mom2_weight, hp.alpha), tcfg("emmet"))
    assert len(mine.updates) == len(ref)
    for u, dW in zip(mine.updates, ref):
        assert rel(u.delta, dW) < 1e-5


def test_alphaedit_spread_with_and_without_earlier_keys(family, tok, stats):
    """Two sequential batches: the second solves with Kp Kpᵀ of the first (AlphaEdit's cache_c)."""
    model = tiny(family)
    C = C0s(model, tok, stats)
    ev = torch.linalg.eigvalsh(C[1])
    threshold = float(ev[len(ev) // 2 - 1 : len(ev) // 2 + 1].mean())  # between two eigenvalues: half of layer 1's directions are "null"
    ed = editor("alphaedit", True, stats, MEMIT_GROUPS, null_threshold=threshold)
    first = ed.edit(model, tok, REQS[:2])
    second = ed.edit(model, tok, REQS[2:])
    second.undo()
    first.undo()
    cache: dict = {}
    solve = plain.alphaedit_solve(C, threshold, 10.0, cache)
    ref1 = plain.memit_like(model, tok, REQS[:2], LAYERS, MEMIT_GROUPS, solve, tcfg("alphaedit"))
    plain.alphaedit_remember(model, tok, REQS[:2], LAYERS, MEMIT_GROUPS, cache)
    ref2 = plain.memit_like(model, tok, REQS[2:], LAYERS, MEMIT_GROUPS, solve, tcfg("alphaedit"))
    for mine, ref in ((first, ref1), (second, ref2)):
        for u, dW in zip(mine.updates, ref):
            assert rel(u.delta, dW) < 1e-5
    # the preserved subspace is untouched: ΔW U_keep = 0
    evals, evecs = torch.linalg.eigh(C[1])
    keep = evecs[:, evals >= threshold]
    assert float((second.updates[0].delta @ keep).norm()) < 1e-8 * float(second.updates[0].delta.norm())


@pytest.mark.parametrize("constraint_key", ["plain", "average"])
def test_rome(family, tok, stats, constraint_key):
    model = tiny(family)
    C = C0s(model, tok, stats)
    ed = Editor(objective="rome", layers=[2], steps=STEPS, templates=[ROME_TEMPLATES], constraint_key=constraint_key, progress=False, **stats)
    mine = ed.edit(model, tok, REQS[:2])  # one request after the other
    mine.undo()
    ref = [plain.rome(model, tok, r, 2, ROME_TEMPLATES, C[2], tcfg("rome"), constraint_key) for r in REQS[:2]]
    for u, dW in zip(mine.updates, ref):
        assert rel(u.delta, dW) < 1e-5
    assert ("holds at each plain prompt's key" in mine.report()) == (constraint_key == "plain")


def test_memit_second_sequential_batch(tok, stats):
    """Sequential MEMIT keeps only C0: the second batch is MEMIT on the once-edited model."""
    model = tiny("gpt2")
    C = C0s(model, tok, stats)
    ed = editor("memit", True, stats, MEMIT_GROUPS)
    first = ed.edit(model, tok, REQS[:2])
    second = ed.edit(model, tok, REQS[2:])
    second.undo()
    first.undo()
    solve = plain.memit_solve(C, ed.objective.config.mom2_weight)
    plain.memit_like(model, tok, REQS[:2], LAYERS, MEMIT_GROUPS, solve, tcfg())
    ref = plain.memit_like(model, tok, REQS[2:], LAYERS, MEMIT_GROUPS, solve, tcfg())
    for u, dW in zip(second.updates, ref):
        assert rel(u.delta, dW) < 1e-5


def test_every_edit_records_its_reference_and_conventions(tok, stats):
    model = tiny("gpt2")
    for objective, want in (("rome", "kmeng01/rome"), ("memit", "kmeng01/memit"), ("emmet", "unified-model-editing"), ("alphaedit", "AlphaEdit")):
        e = Editor(objective=objective, layers=[2], steps=2, templates=MEMIT_GROUPS, progress=False, **stats).edit(model, tok, REQS[:1])
        e.undo()
        assert want in e.info["reference"]
        t = e.config["target"]
        assert t["delta_module"] == ("mlp" if objective == "rome" else "block")
        assert e.config["constraint_key"] == ("plain" if objective == "rome" else "average")
        assert e.config["keep_edited_keys"] == (objective == "alphaedit")
