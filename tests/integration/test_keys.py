"""Keys read from cached block inputs equal the plain full forward's, on tiny models of each family.

    K_l = mean over templates of the input of W_l at the edit token   (d_in, n)

`ModelAccess(cache_bytes=0)` always runs the model from the embeddings (the plain path); the
default one runs blocks c … l from the cached input of block c. Both must agree (float32
rounding only), also after W at an earlier layer changed, and a whole spread edit must give the
same ΔW either way.
"""

import pytest
import torch
from models import tiny, tokenizer

import editkit.keys as keys_mod
from editkit import Editor, EditRequest
from editkit.architectures import architecture_of, module, read_weight
from editkit.keys import ModelAccess

REQS = [
    EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    EditRequest(prompt="The capital of {} is", subject="France", target_new="Rome", target_true="Paris"),
    EditRequest(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden"),
]
TEMPLATES = ["{}", "A short story. {}", "It was a dark and stormy night, and then {}", "Yes. {}"]
FAMILIES = ["gpt2", "gptj", "gpt_neox", "llama"]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def pair(model, tok, **kw):
    """(cached, plain) accesses over the same model; batch size 5 so that batches mix rows."""
    return ModelAccess(model, tok, REQS, TEMPLATES, batch_size=5, **kw), ModelAccess(model, tok, REQS, TEMPLATES, batch_size=5, cache_bytes=0)


def random_delta(model, layer: int, gen) -> torch.Tensor:
    W = read_weight(model, layer).detach().double()  # (d_out, d_in)
    return 0.5 * W.norm() / W.numel() ** 0.5 * torch.randn(W.shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_keys_equal_plain_keys_through_a_spread(family, tok, gen):
    model = tiny(family)
    cached, plain = pair(model, tok)
    for layer in (1, 2, 3):
        kc, kp = cached.keys(layer), plain.keys(layer)
        assert kc.shape == kp.shape and close(kc, kp), family
        cached.add(layer, random_delta(model, layer, gen))  # the model changes at the layer just read
    assert any(b.c == 3 and b.X is not None for b in cached._batches)  # the cache was really used
    assert close(cached.keys(3), plain.keys(3))  # read twice at the cached layer


@pytest.mark.parametrize("family", FAMILIES)
def test_edit_below_the_cache_is_seen(family, tok, gen):
    model = tiny(family)
    cached, plain = pair(model, tok)
    cached.keys(2)
    cached.add(1, random_delta(model, 1, gen))  # below the cached input of block 2
    assert close(cached.keys(3), plain.keys(3))
    cached.keys(3)
    with torch.no_grad():  # a change not made through `add`: caught by the parameters' versions
        module(model, architecture_of(model).embed).weight.mul_(1.5)
    assert close(cached.keys(3), plain.keys(3))


def used(access) -> int:
    """Bytes held: each batch's own positions and the templates' shared prefixes."""
    nbytes = lambda x: x.numel() * x.element_size()
    return sum(nbytes(b.X) for b in access._batches if b.X is not None) + sum(nbytes(x) for p in access._prefix.values() for x in p.values())


def test_cache_budget_is_kept_and_overflow_reads_plainly(tok, gen):
    model = tiny("gpt2")
    probe = ModelAccess(model, tok, REQS, TEMPLATES, batch_size=5)
    probe.keys(1)
    assert all(b.X is not None for b in probe._batches)
    budget = used(probe) // 2
    cached, plain = pair(model, tok, cache_bytes=budget)
    for layer in (1, 2, 3):
        kc, kp = cached.keys(layer), plain.keys(layer)
        assert close(kc, kp)
        assert 0 < used(cached) <= budget
        assert any(b.X is None for b in cached._batches)  # the rest is read from the embeddings
        cached.add(layer, random_delta(model, layer, gen))


def test_rows_of_a_template_share_its_prefix(tok):
    model = tiny("gpt2")
    access = ModelAccess(model, tok, REQS, TEMPLATES, batch_size=5)
    access.keys(2)
    shares = {t: s for b in access._batches for t, s in zip(b.tmpl.tolist(), b.share.tolist())}
    assert shares[0] == 0 and min(shares[t] for t in (1, 2, 3)) >= 2  # "{}" shares nothing; the prefixes do
    assert {t: p.shape[0] for t, p in access._prefix[2].items()} == shares


def test_training_mode_and_unknown_family_take_the_plain_path(tok, monkeypatch):
    model = tiny("gpt2")
    model.train()
    cached, _ = pair(model, tok)
    cached.keys(2)
    assert cached._batches is None
    model.eval()
    monkeypatch.setattr(keys_mod, "CACHED", set())
    cached.keys(2)
    assert cached._batches is None


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("objective", ["memit", "emmet"])
def test_spread_edit_gives_the_same_delta(family, objective, tok, tmp_path, monkeypatch):
    cfg = dict(objective=objective, strategy="spread", layers=[0, 1, 2], steps=3, n_context=2, context_len=4, n_tokens=1500, max_len=64,
               progress=False, cache_dir=str(tmp_path))
    fast_model = tiny(family)
    fast = Editor(**cfg).edit(fast_model, tok, REQS)
    monkeypatch.setattr(keys_mod, "CACHED", set())  # every read from the embeddings
    plain_model = tiny(family)
    plain = Editor(**cfg).edit(plain_model, tok, REQS)
    assert [u.layer for u in fast.updates] == [u.layer for u in plain.updates] == [0, 1, 2]
    assert fast.info["target_nll"] != fast.info["target_nll_initial"] and float(fast.updates[-1].delta.norm()) > 0  # δ reaches the targets
    for f, p in zip(fast.updates, plain.updates):
        assert torch.allclose(f.keys, p.keys, rtol=1e-5, atol=1e-6)
        assert torch.allclose(f.delta, p.delta, rtol=1e-4, atol=1e-6 * float(p.delta.abs().max()))
