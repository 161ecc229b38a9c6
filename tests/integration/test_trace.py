"""Causal tracing on tiny random GPT-2 / GPT-NeoX / Llama models with the real GPT-2 tokenizer.

The models know nothing, so the tests check exact properties of the method rather than where
facts live: what restoring must give back, what it must leave alone, shapes, hooks, files.
"""

import json

import pytest
import torch
import transformers
from models import V, tokenizer
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from editkit import trace
from editkit.architectures import num_layers
from editkit.cli import main as cli_main
from editkit.tokens import locate_subject

D, L = 32, 4
TEMPLATE, SUBJECT = "The mother tongue of {} is", "Danielle Darrieux"  # prefix + 3+ subject tokens
SMALL = dict(samples=3, window=3)
# Unlike models.tiny(): a large init scale makes the random models' next-token distributions
# peaked, so that the clean and corrupted probabilities of their argmax token differ clearly.
INIT = 1.0


def _gpt2():
    return GPT2LMHeadModel(GPT2Config(vocab_size=V, n_layer=L, n_embd=D, n_head=4, n_positions=64,
                                      initializer_range=INIT))


def _neox():
    return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                            num_attention_heads=4, intermediate_size=64,
                                            initializer_range=INIT))


def _llama():
    return LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                        num_attention_heads=4, num_key_value_heads=2,
                                        intermediate_size=64, initializer_range=INIT))


BUILDERS = {"gpt2": _gpt2, "gpt_neox": _neox, "llama": _llama}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and a busy 2-core machine makes them much slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _known_fact(model, tok):
    """(template, subject, token id the clean model predicts): a fact this model 'knows'."""
    ids = tok(TEMPLATE.format(SUBJECT), return_tensors="pt").input_ids
    with torch.no_grad():
        return TEMPLATE, SUBJECT, model(ids).logits[0, -1].argmax().item()


@pytest.fixture(scope="module")
def models(tok):
    torch.manual_seed(0)
    built = {name: build().eval() for name, build in BUILDERS.items()}
    return {name: (m, _known_fact(m, tok)) for name, m in built.items()}


@pytest.fixture(scope="module")
def gpt2(models):
    return models["gpt2"][0]


@pytest.fixture(scope="module")
def FACT(models):
    return models["gpt2"][1]


@pytest.fixture(scope="module")
def fact_traces(gpt2, tok, FACT):
    return trace.trace_fact_kinds(gpt2, tok, *FACT, **SMALL)


def _editkit_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("family", list(BUILDERS))
@pytest.mark.parametrize("kind", trace.KINDS)
def test_shapes_and_exact_properties(models, tok, family, kind):
    model, FACT = models[family]
    r = trace.trace_fact(model, tok, *FACT, kind=kind, **SMALL)
    text, first, last = locate_subject(tok, *FACT[:2])
    T = len(tok(text)["input_ids"])
    assert r.scores.shape == (T, num_layers(model)) and len(r.tokens) == T
    assert r.subject == (first, last) and first > 0 and r.prompt == text
    assert "".join(r.tokens) == text
    assert ((r.scores >= 0) & (r.scores <= 1)).all() and 0 < r.low < 1 and 0 < r.high < 1
    assert r.low != pytest.approx(r.high, rel=1e-3)  # the noise does corrupt the prediction
    assert (r.scores[:first] == r.low).all()  # positions before the subject were never corrupted
    if kind == "hidden":
        # the last block's output at the last position fixes the prediction: clean exactly
        assert r.scores[-1, -1].item() == pytest.approx(r.high, rel=1e-4)


def test_restoring_every_position_of_one_layer_is_clean(gpt2, tok, FACT):
    tr = trace._Tracer(gpt2, tok, *FACT, samples=4, noise=3.0, seed=1, batch_size=64)
    configs = [[(layer, t) for t in range(tr.T)] for layer in range(L)]
    for kind in ("hidden",):
        torch.testing.assert_close(tr.restored(kind, configs), torch.full((L,), tr.high),
                                   rtol=1e-4, atol=0)
    # attention outputs at every layer of the last position leave only position-wise maps on it
    restored = tr.restored("attn", [[(j, tr.T - 1) for j in range(L)]])
    assert restored.item() == pytest.approx(tr.high, rel=1e-4)


def test_attention_window_over_all_layers_restores_the_last_token(gpt2, tok, FACT):
    r = trace.trace_fact(gpt2, tok, *FACT, kind="attn", samples=3, window=2 * L + 1)
    torch.testing.assert_close(r.scores[-1], torch.full((L,), r.high), rtol=1e-4, atol=0)
    # every window is clipped to the same full set of layers: each row is constant
    torch.testing.assert_close(r.scores, r.scores[:, :1].expand(-1, L), rtol=1e-5, atol=0)


@pytest.mark.parametrize("family", list(BUILDERS))
def test_shared_prefix_batches_match_full_batches(models, tok, family):
    model, FACT = models[family]
    tr = trace._Tracer(model, tok, *FACT, samples=3, noise=3.0, seed=0, batch_size=64)
    if not tr._grow:  # transformers 4.x builds the attention mask for the input batch size
        assert int(transformers.__version__.split(".")[0]) < 5, "SDPA attention in transformers 5 accepts a grown batch"
        pytest.skip("transformers 4.x: a batch cannot grow inside the forward pass; the tracer runs full batches")
    hidden = [[(l, t)] for t in range(tr.first, tr.T) for l in range(L)]
    mlp = [[(j, t) for j in trace.window_layers(l, 3, L)] for t in range(tr.first, tr.T) for l in range(L)]
    grown = tr.restored("hidden", hidden), tr.restored("mlp", mlp)
    tr._grow = False
    full = tr.restored("hidden", hidden), tr.restored("mlp", mlp)
    for g, f in zip(grown, full):
        torch.testing.assert_close(g, f, rtol=1e-4, atol=1e-7)


def test_eager_attention_runs_full_batches(tok, gpt2, FACT):
    torch.manual_seed(0)
    eager = _gpt2().eval()
    eager.load_state_dict(gpt2.state_dict())
    eager.set_attn_implementation("eager")
    assert not trace._Tracer(eager, tok, *FACT, samples=2, noise=3.0, seed=0, batch_size=64)._grow
    a = trace.trace_fact(eager, tok, *FACT, kind="attn", **SMALL)
    b = trace.trace_fact(gpt2, tok, *FACT, kind="attn", **SMALL)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-3, atol=1e-6)


def test_bad_arguments_fail_before_tracing(gpt2, tok, FACT):
    with pytest.raises(ValueError, match="kinds"):
        trace.trace_fact(gpt2, tok, *FACT, kind="residual")
    with pytest.raises(ValueError, match="window"):
        trace.trace_fact(gpt2, tok, *FACT, kind="mlp", window=0)


def test_window_layers():
    assert list(trace.window_layers(0, 10, 6)) == [0, 1, 2, 3, 4]
    assert list(trace.window_layers(5, 10, 48)) == list(range(0, 10))
    assert list(trace.window_layers(20, 10, 48)) == list(range(15, 25))
    assert list(trace.window_layers(3, 3, 6)) == [2, 3, 4]
    assert list(trace.window_layers(3, 1, 6)) == [3]


@pytest.mark.parametrize("kind", trace.KINDS)
def test_zero_noise_gives_the_clean_score_everywhere(gpt2, tok, FACT, kind):
    r = trace.trace_fact(gpt2, tok, *FACT, kind=kind, samples=2, noise=0.0, window=3)
    assert r.low == pytest.approx(r.high, rel=1e-5)
    torch.testing.assert_close(r.scores, torch.full_like(r.scores, r.high), rtol=1e-4, atol=0)


def test_seeded_and_batch_size_independent(gpt2, tok, FACT):
    a = trace.trace_fact(gpt2, tok, *FACT, kind="mlp", seed=3, batch_size=30, **SMALL)
    b = trace.trace_fact(gpt2, tok, *FACT, kind="mlp", seed=3, batch_size=512, **SMALL)
    c = trace.trace_fact(gpt2, tok, *FACT, kind="mlp", seed=4, **SMALL)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=0)
    assert a.low == b.low and a.low != c.low


def test_hooks_removed_after_a_call_and_after_an_error(gpt2, tok, FACT):
    gpt2.train()
    trace.trace_fact(gpt2, tok, *FACT, kind="attn", **SMALL)
    assert _editkit_hooks(gpt2) == 0 and gpt2.training  # training mode given back too
    gpt2.eval()

    def boom(mod, inputs, output):
        if _editkit_hooks(gpt2) > 1 and output.shape[0] % 5 == 0:  # a restoration pass (S=5)
            raise RuntimeError("boom")

    for hook in (boom, lambda mod, inputs, output: 1 / 0):  # in restoration, in the first pass
        handle = gpt2.transformer.ln_f.register_forward_hook(hook)
        try:
            with pytest.raises((RuntimeError, ZeroDivisionError)):
                trace.trace_fact(gpt2, tok, *FACT, kind="hidden", samples=5, window=3)
        finally:
            handle.remove()
        assert _editkit_hooks(gpt2) == 0


def test_target_and_fact_records(gpt2, tok):
    text = "The mother tongue of Danielle Darrieux is"
    r = trace.trace_fact(gpt2, tok, text, SUBJECT, "French", kind="hidden", samples=1)
    assert r.target_id == tok(" French")["input_ids"][0] and r.prompt == text
    known = {"subject": "Vinson Massif", "attribute": "Antarctica",
             "prompt": "Vinson Massif is located in the continent of"}
    flat = {"prompt": "Toko Yasuda, the", "subject": "Toko Yasuda", "ground_truth": "guitar"}
    full = {"requested_rewrite": {"prompt": "{}, the", "subject": "Toko Yasuda",
                                  "target_true": {"str": "guitar"}}}
    assert trace.fact_fields(known) == ("{} is located in the continent of", "Vinson Massif",
                                        "Antarctica")
    assert trace.fact_fields(flat) == trace.fact_fields(full) == ("{}, the", "Toko Yasuda", "guitar")
    with pytest.raises(ValueError, match="known_1000"):
        trace.fact_fields({"question": "?"})
    for name in ("knowns", "counterfact:val"):  # the shared data files, by short name
        records = trace.load_facts(name, 3)
        assert len(records) == 3
        for template, subject, target in map(trace.fact_fields, records):
            assert "{}" in template and subject and target


def test_token_categories():
    # T = 9: 1 prefix token, subject 1..3, then 4..8
    assert trace.token_categories(1, 3, 9) == [[1], [2], [3], [4], [5, 6, 7], [8]]
    # one-token subject followed by one token: first == last subject, no subsequent tokens
    assert trace.token_categories(0, 0, 2) == [[0], [], [0], [], [], [1]]


def test_trace_facts_averages_by_category(gpt2, tok, FACT, fact_traces):
    unknown = ("{} is located in the continent of", "Vinson Massif", "Antarctica")
    facts = [FACT, unknown]
    with pytest.raises(ValueError, match="only_known=False"):
        trace.trace_facts(gpt2, tok, [unknown], progress=False, **SMALL)
    s = trace.trace_facts(gpt2, tok, facts, progress=False, kinds=["mlp"], **SMALL)
    assert [f["subject"] for f in s.facts] == [SUBJECT]
    assert [f["subject"] for f in s.skipped] == ["Vinson Massif"]
    s = trace.trace_facts(gpt2, tok, facts, only_known=False, progress=False, **SMALL)
    assert set(s.effects) == set(trace.KINDS) and len(s.facts) == 2 and not s.skipped
    for e in s.effects.values():
        assert e.shape == (6, L) and torch.isfinite(e).all()
    assert s.counts.tolist() == [2, 2, 2, 1, 1, 2]  # FACT ends right after its subject
    # one fact alone: the categories are plain averages of its effect rows
    one = trace.trace_facts(gpt2, tok, [FACT], min_prob=0.0, progress=False, **SMALL)
    assert len(one.facts) == 1
    r = fact_traces["mlp"]
    first, last = r.subject
    torch.testing.assert_close(one.effects["mlp"][0], r.effect[first])
    torch.testing.assert_close(one.effects["mlp"][1], r.effect[first + 1 : last].mean(0))
    torch.testing.assert_close(one.effects["mlp"][2], r.effect[last])
    torch.testing.assert_close(one.effects["mlp"][5], r.effect[-1])

    top = trace.top_mlp_layers(one, k=3)
    assert len(set(top)) == 3 and all(0 <= l < L for l in top)
    assert top == trace.top_mlp_layers(r, k=3) == trace.top_mlp_layers(fact_traces, k=3)
    eff = r.effect[last]
    assert eff[top[0]] == eff.max() and eff[top[0]] >= eff[top[1]] >= eff[top[2]]


def test_plots_are_written(gpt2, tok, FACT, fact_traces, tmp_path):
    png = trace.plot_traces(fact_traces, tmp_path / "one.png")
    s = trace.trace_facts(gpt2, tok, [FACT], only_known=False, progress=False, **SMALL)
    png2 = trace.plot_traces(s, tmp_path / "sub" / "avg.png")
    for p in (png, png2):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_cli(gpt2, tok, tmp_path, capsys):
    gpt2.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    facts = [{"subject": "Vinson Massif", "attribute": "Antarctica",
              "prompt": "Vinson Massif is located in the continent of"},
             {"prompt": "Toko Yasuda, the", "subject": "Toko Yasuda", "ground_truth": "guitar"}]
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    out = tmp_path / "trace.png"
    rc = cli_main(["trace", "--model", str(tmp_path / "model"), "--facts", str(tmp_path / "facts.json"),
                   "--n", "2", "--out", str(out), "--samples", "2", "--window", "3", "--all", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0 and out.stat().st_size > 0
    assert "traced 2 facts" in printed and "top MLP layers" in printed
    with pytest.raises(SystemExit, match="editkit trace: .*--all"):  # the random model knows neither fact
        cli_main(["trace", "--model", str(tmp_path / "model"), "--facts", str(tmp_path / "facts.json"),
                  "--out", str(out), "--samples", "2", "--no-progress"])


def test_trace_command_defaults_follow_the_other_commands(monkeypatch, tmp_path, capsys):
    """No --model / --facts needed (editkit-teach, counterfact:val), --no-progress accepted, and on
    a 4-layer model the mlp/attn window is 1 layer, not ROME's 10 (which would restore every layer)."""
    seen = {}
    real = trace.trace_facts

    def spy(*a, **k):
        seen.update(k)
        return real(*a, **{**k, "samples": 1})

    monkeypatch.setattr(trace, "trace_facts", spy)
    rc = cli_main(["trace", "--n", "3", "--out", str(tmp_path / "t.png"), "--no-progress"])
    assert rc == 0 and seen["window"] == 1 and "traced" in capsys.readouterr().out
