"""Tiny randomly initialised models of each supported family (no downloads)."""


import torch
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPTJConfig,
    GPTJForCausalLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from editkit.paths import data_dir

DATA = data_dir()  # $EDITKIT_DATA, else ../shared/data
TOKENIZER = DATA / "gpt2-tokenizer"
V = 50257

BUILDERS = {
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=V)),
    "gptj": lambda: GPTJForCausalLM(GPTJConfig(n_layer=4, n_embd=32, n_head=4, rotary_dim=4, vocab_size=V, bos_token_id=0, eos_token_id=0)),
    "gpt_neox": lambda: GPTNeoXForCausalLM(GPTNeoXConfig(
        num_hidden_layers=4, hidden_size=32, num_attention_heads=4, intermediate_size=64, vocab_size=V, bos_token_id=0, eos_token_id=0)),
    "llama": lambda: LlamaForCausalLM(LlamaConfig(
        num_hidden_layers=4, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64, vocab_size=V, bos_token_id=0,
        eos_token_id=0)),
}


def tiny(family: str = "gpt2", seed: int = 0):
    torch.manual_seed(seed)
    return BUILDERS[family]().eval()


def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER)


def snapshot(model) -> dict:
    """Every weight as raw bits (NaN-safe bit-for-bit comparison); offloaded (meta) placeholders skipped."""
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}  # compare bits, not values (NaN == NaN)
    return {k: v.detach().clone().view(as_int[v.dtype.itemsize]) for k, v in model.state_dict().items() if v.device.type != "meta"}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
