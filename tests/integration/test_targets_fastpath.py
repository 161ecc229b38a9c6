"""The fast path of target optimisation (blocks ≤ L once, then only blocks > L at positions ≥ the
subject) gives the same δ and losses as the full forward, on tiny random GPT-2 and Llama models
with the real GPT-2 vocabulary. Tolerance: float32 rounding of a different summation order,
‖Z_fast − Z_full‖ / ‖Z_full‖ < 1e-5 per request, |loss_fast − loss_full| < 1e-4.

Along trajectories of several updates the weight decay is off (`NO_WD`): the references' term
wd · ‖δ‖ / ‖h‖² has a gradient of constant size wd / ‖h‖², which on these tiny random models
(‖h‖ ≈ 5) balances the NLL gradient in many coordinates, and Adam's per-coordinate
normalisation then turns the paths' 1e-7 rounding differences into 1e-4 after five updates
(measured: 3e-7 without the term, 1e-4 with it). The term itself is checked after one update,
where rounding cannot have been amplified yet (`test_norm_weight_decay_after_one_update`), and
against the plain serial reimplementation in test_reference_conventions.py."""

import pytest
import torch
from models import tiny, tokenizer

import editkit.forward as forward_mod
from editkit import EditRequest
from editkit.architectures import architecture_of, module
from editkit.config import TargetConfig
from editkit.forward import prefix_families, split_rows
from editkit.hooks import swapped
from editkit.targets import compute_targets

REQS = [
    EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    EditRequest(prompt="The capital of {} is", subject="France", target_new="Rome"),
    EditRequest(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden"),
    EditRequest(prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English language"),
    EditRequest(prompt="{} was developed by", subject="Windows 95", target_new="the Apple company"),
]
TEMPLATES = ["{}", "The following is true. {}", "Here is a fact: {}", "As everyone knows, in 1990 {}"]
FAMILIES = ["gpt2", "llama"]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny(request.param)


NO_WD = {"weight_decay": 0.0}


def run(model, tok, layer=2, reqs=REQS, chunk=64, **kw):
    cfg = TargetConfig(**{"steps": 6, **NO_WD, **kw})
    return compute_targets(model, tok, reqs, layer, TEMPLATES, cfg, chunk=chunk, progress=False)


def assert_same(a, b, rtol=1e-5, atol=1e-4):
    rel = (a.Z - b.Z).norm(dim=0) / b.Z.norm(dim=0)
    assert float(rel.max()) < rtol, rel
    assert torch.allclose(a.H, b.H, rtol=1e-6, atol=1e-6)
    assert torch.allclose(a.losses, b.losses, atol=atol), (a.losses, b.losses)
    assert torch.equal(a.steps, b.steps)


@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("layer", [0, 2])
def test_fast_equals_full_along_the_trajectory(model, tok, steps, layer):
    """Same δ and loss after 1 step (the initial loss) and after 4."""
    assert_same(run(model, tok, layer, steps=steps, path="fast"), run(model, tok, layer, steps=steps, path="full"))


@pytest.mark.parametrize("steps", [1, 4])
def test_fast_equals_full_at_the_top_block(model, tok, steps):
    """Layer 3 is the top block. There, δ at the subject reaches no target token (only the KL
    read at the subject itself), so the gradient would be pure rounding noise; at the last
    prompt token δ reaches the first target token directly."""
    kw = dict(steps=steps, fact_token="last")
    assert_same(run(model, tok, 3, path="fast", **kw), run(model, tok, 3, path="full", **kw))


@pytest.mark.parametrize("delta_module", ["block", "mlp"])
def test_norm_weight_decay_after_one_update(model, tok, delta_module):
    kw = dict(steps=2, weight_decay=0.5, delta_module=delta_module)
    assert_same(run(model, tok, path="fast", **kw), run(model, tok, path="full", **kw))


def test_fast_equals_full_with_shared_context_prefixes(model, tok, monkeypatch):
    """Rows of one context template share their prefix's keys/values (computed once, batch 1);
    families of ≥ 2 rows here so that the 5 requests form them."""
    monkeypatch.setattr(forward_mod, "prefix_families", lambda ids, at: prefix_families(ids, at, min_rows=2))
    fams = prefix_families([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 9, 9], [8, 8]], [6, 5, 1], min_rows=2)
    assert fams == [([0, 1], 5), ([2], 0)]
    assert_same(run(model, tok, steps=4, path="fast"), run(model, tok, steps=4, path="full"))


def test_batched_equals_serial(model, tok):
    assert_same(run(model, tok, reqs=REQS[:3], steps=4), run(model, tok, reqs=REQS[:3], steps=4, serial=True))


def test_chunking_does_not_change_results(model, tok):
    assert_same(run(model, tok, chunk=2, steps=4), run(model, tok, chunk=64, steps=4))


def test_early_stopping_matches_full(model, tok):
    """With a threshold some requests reach and others do not, each stops at the same step as
    on the full path (batched = serial then follows from the separable losses, tested above)."""
    first = run(model, tok, steps=1).losses
    stop = float(first.median())
    fast = run(model, tok, steps=6, early_stop=stop)
    assert 0 < int((fast.steps < 5).sum()) < len(REQS)
    assert_same(fast, run(model, tok, steps=6, early_stop=stop, path="full"))


def _state(model):
    arch = architecture_of(model)
    blocks = module(model, arch.blocks)
    return (
        [id(b) for b in blocks],
        [id(module(model, arch.mlp, i)) for i in range(len(blocks))],
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
        [p.requires_grad for p in model.parameters()],
        model.training,
    )


def test_modules_and_hooks_restored_after_success(model, tok):
    before = _state(model)
    run(model, tok, steps=2)
    assert _state(model) == before


@pytest.mark.parametrize("path", ["fast", "full"])
def test_modules_and_hooks_restored_when_an_exception_flies(tok, path):
    model = tiny("gpt2")
    model.train()
    before = _state(model)
    head = model.get_output_embeddings()
    calls = {"n": 0}

    def boom(_m, _i, _o):
        calls["n"] += 1
        if calls["n"] == 2:  # in the middle of the optimisation: stand-ins are in place
            raise RuntimeError("boom")

    h = head.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            run(model, tok, steps=4, path=path)
    finally:
        h.remove()
    assert _state(model) == before
    # and the model still computes what it did: a plain forward equals a fresh copy's
    fresh = tiny("gpt2").eval()
    model.eval()
    ids = torch.tensor([[464, 3139, 286, 4881, 318]])
    assert torch.equal(model(ids).logits, fresh(ids).logits)


def test_swapped_restores_on_exception():
    model = tiny("llama")
    blocks = module(model, "model.layers")
    originals = list(blocks)
    mlp = blocks[1].mlp
    with pytest.raises(ValueError):
        with swapped(model, {"model.layers.0": torch.nn.Identity(), "model.layers.1.mlp": torch.nn.Identity()}):
            assert isinstance(blocks[0], torch.nn.Identity) and isinstance(blocks[1].mlp, torch.nn.Identity)
            raise ValueError
    assert list(blocks) == originals and blocks[1].mlp is mlp


def test_split_covers_every_row_once():
    g = torch.Generator().manual_seed(0)
    subj = torch.randint(0, 20, (300,), generator=g).tolist()
    lens = [s + int(torch.randint(1, 8, (1,), generator=g)) for s in subj]
    groups = split_rows(subj, lens, max_rows=64, overhead=16)
    assert sorted(r for grp in groups for r in grp) == list(range(300))
    assert all(len(grp) <= 64 for grp in groups)


def test_unsupported_cache_falls_back_to_the_full_path(tok, monkeypatch, caplog):
    """A model whose attention cache does not keep every position (sliding window) gets the
    full forward, with a warning, and the same result."""
    model = tiny("gpt2")

    def refuse(self, cache, T):
        raise forward_mod.Unsupported("test")

    monkeypatch.setattr(forward_mod.UpperPass, "_caches", refuse)
    with caplog.at_level("WARNING", logger="editkit.forward"):
        fast = run(model, tok, steps=3, path="fast")
    assert "fast path unavailable" in caplog.text
    assert_same(fast, run(model, tok, steps=3, path="full"))


@pytest.mark.parametrize("fact_token", ["last", "subject_first"])
def test_fast_equals_full_at_other_fact_tokens(model, tok, fact_token):
    assert_same(run(model, tok, 2, steps=3, path="fast", fact_token=fact_token), run(model, tok, 2, steps=3, path="full", fact_token=fact_token))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("path", ["fast", "full"])
def test_both_paths_equal_the_serial_reference(family, path, tok):
    """Both paths against tests/serial_reference.py (MEMIT's compute_z as written: one request at
    a time, full-vocabulary logits, torch.optim.Adam), the reference the speed benchmarks time."""
    from serial_reference import reference_targets

    model = tiny(family)
    cfg = TargetConfig(steps=6, **NO_WD, path=path)
    got = compute_targets(model, tok, REQS[:3], 2, TEMPLATES, cfg, progress=False)
    ref = reference_targets(model, tok, REQS[:3], 2, TEMPLATES, cfg)
    assert_same(got, ref)
