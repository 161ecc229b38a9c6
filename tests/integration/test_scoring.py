"""editkit.scoring: batched, right-padded scoring equals scoring each prompt alone."""


import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from editkit.paths import data_dir
from editkit.scoring import compare, target_logprob

DATA = data_dir()  # $EDITKIT_DATA, else ../shared/data

PROMPTS = [
    "Autonomous University of Madrid, which is located in",
    "Toko Yasuda, the",
    "What is the twin city of Wellington? It is",
    "The mother tongue of Danielle Darrieux is",
    "A",
]
TARGETS = ["Spain", " guitar", "Sydney, Australia", "French", "Los Angeles International Airport"]


@pytest.fixture(scope="module")
def tiny():
    tok = AutoTokenizer.from_pretrained(DATA / "gpt2-tokenizer")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=len(tok), n_positions=64))
    model.train()  # target_logprob must switch to eval itself (dropout off) and restore the mode
    return model, tok


def one_at_a_time(model, tok, prompt, target):
    """Reference: one unpadded sequence, no attention mask, no position ids."""
    p = tok(prompt)["input_ids"]
    t = tok(target if target.startswith(" ") else " " + target)["input_ids"]
    ids = torch.tensor([p + t])
    model.eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return torch.stack([logp[len(p) + j - 1, tok_id] for j, tok_id in enumerate(t)]).mean().item()


def test_batched_equals_one_at_a_time(tiny):
    model, tok = tiny
    assert tok.pad_token is None  # GPT-2's tokenizer: padding is handled inside the function
    got = target_logprob(model, tok, PROMPTS, TARGETS, batch_size=3)
    assert model.training  # mode restored
    assert got.shape == (len(PROMPTS),) and got.dtype == torch.float32
    want = torch.tensor([one_at_a_time(model, tok, p, t) for p, t in zip(PROMPTS, TARGETS)])
    torch.testing.assert_close(got.double(), want.double(), atol=1e-5, rtol=0)
    # batch size must not matter either
    torch.testing.assert_close(target_logprob(model, tok, PROMPTS, TARGETS, batch_size=64), got, atol=1e-5, rtol=0)
    assert tok.pad_token is None  # tokenizer untouched


def test_leading_space_is_added_once(tiny):
    model, tok = tiny
    a = target_logprob(model, tok, ["Toko Yasuda, the"], ["guitar"])
    b = target_logprob(model, tok, ["Toko Yasuda, the"], [" guitar"])
    torch.testing.assert_close(a, b)


def test_compare(tiny):
    model, tok = tiny
    a, b = ["Spain", "piano"], ["Sweden", "guitar"]
    prompts = PROMPTS[:2]
    got = compare(model, tok, prompts, a, b)
    la, lb = target_logprob(model, tok, prompts, a), target_logprob(model, tok, prompts, b)
    assert got.dtype == torch.bool and got.tolist() == (la > lb).tolist()
    assert (compare(model, tok, prompts, b, a) == ~got).all() or bool((la == lb).any())


def test_mismatched_lengths_raise(tiny):
    model, tok = tiny
    with pytest.raises(ValueError):
        target_logprob(model, tok, ["a", "b"], ["c"])
