"""Peak memory and time of one edit on a model with Llama-2-7B's layer shape, on this CPU.

    OMP_NUM_THREADS=1 python benchmarks/scale/llama7b_layer.py --layers 3 --edit-layers 1 2 --out benchmarks/scale/results.jsonl

A LlamaForCausalLM built from config with Llama-2-7B's layer shapes (hidden 4096, MLP 11008, 32
heads) but only a few layers, random weights, float32, and GPT-2's tokenizer (vocabulary 50257
instead of 32000: the embedding and head are 1.6× Llama's). Measured per phase: building
the model, key statistics C0 (d_in = 11008) over a few thousand Wikipedia tokens, then one MEMIT
+ spread edit of one request (targets: 20 steps; the solve: factorising λC0 (11008²) in float64),
with the process's peak resident memory after each phase. benchmarks/scale/README.md turns the
numbers into what a full 7B and 70B edit need.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=3, help="blocks in the model")
    ap.add_argument("--edit-layers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-tokens", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ridge", type=float, default=1e-4, help="C0 over a few thousand tokens is singular at d_in = 11008 (rank ≤ tokens)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from editkit import Editor, EditRequest
    from editkit.jsonl import emit
    from editkit.paths import data_dir

    rec = {"shape": "llama-2-7b layer", "hidden": 4096, "mlp": 11008, "vocab": 50257, "blocks": a.layers, "edit_layers": a.edit_layers,
           "dtype": a.dtype, "threads": torch.get_num_threads(), "n_tokens": a.n_tokens, "steps": a.steps, "ridge": a.ridge}
    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")  # GPT-2's 50257 tokens stand in for Llama's 32000
    t = time.perf_counter()
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=a.layers, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=len(tok), max_position_embeddings=4096, bos_token_id=0, eos_token_id=0)
    model = LlamaForCausalLM(cfg).to(getattr(torch, a.dtype)).eval()
    rec["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    rec["seconds_build"], rec["rss_gib_after_build"] = round(time.perf_counter() - t, 1), round(rss_gib(), 2)
    tok = AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")
    ed = Editor(objective="memit", strategy="spread", layers=a.edit_layers, steps=a.steps, n_tokens=a.n_tokens, max_len=128, ridge=a.ridge,
                cache_dir=str(ROOT / ".scale-cache"), progress=False)
    t = time.perf_counter()
    ed.prepare(model, tok)
    rec["seconds_stats"], rec["rss_gib_after_stats"] = round(time.perf_counter() - t, 1), round(rss_gib(), 2)
    req = EditRequest(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball")
    t = time.perf_counter()
    edit = ed.edit(model, tok, [req])
    rec["seconds_edit"] = round(time.perf_counter() - t, 1)
    rec["seconds_targets"] = round(edit.info["seconds"]["targets"], 1)
    rec["seconds_distribute"] = round(edit.info["seconds"]["distribute"], 1)
    rec["rss_gib_peak"] = round(rss_gib(), 2)
    rec["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    emit(rec, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
