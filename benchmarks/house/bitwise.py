"""Are C0, target values and ΔW bit-identical between two commits? (The house refactor must not
change any output the faithfulness work did not change on purpose.)

    python benchmarks/house/bitwise.py --out /tmp/now.safetensors            # this tree
    git worktree add /tmp/base <rev> && (cd /tmp/base && python /work/main/benchmarks/house/bitwise.py --out /tmp/base.safetensors)
    python benchmarks/house/bitwise.py --compare /tmp/base.safetensors /tmp/now.safetensors

Tiny random GPT-2 and Llama models (seed 0), three CounterFact-style requests, every objective ×
strategy with its defaults (5 target steps), key statistics over 2,000 Wikipedia tokens. Runs
from whichever editkit is first on the path (the current folder's).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.getcwd())  # the checkout this is run from

REQS = [
    dict(prompt="{} plays the sport of", subject="Michael Jordan", target_new="baseball"),
    dict(prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English"),
    dict(prompt="{}, which is located in", subject="Autonomous University of Madrid", target_new="Sweden"),
]


def models():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    g = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=64, n_head=4, vocab_size=50257)).eval()
    torch.manual_seed(0)
    l = LlamaForCausalLM(LlamaConfig(num_hidden_layers=4, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                     intermediate_size=128, vocab_size=50257, bos_token_id=0, eos_token_id=0)).eval()
    return {"gpt2": g, "llama": l}


def compute(out: str) -> None:
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from editkit import Editor, EditRequest

    data = os.environ.get("EDITKIT_DATA") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
    tok = AutoTokenizer.from_pretrained(os.path.join(data, "gpt2-tokenizer"))
    tensors = {}
    cache = tempfile.mkdtemp()
    for fam, model in models().items():
        for obj in ("rome", "emmet", "memit", "alphaedit"):
            for distribute in (False, True):
                ed = Editor(objective=obj, distribute=distribute, layers=[1, 2], steps=5, n_tokens=2000, max_len=64,
                            cache_dir=cache, progress=False, seed=0)
                edit = ed.edit(model, tok, [EditRequest(**r) for r in REQS])
                name = f"{fam}.{obj}.{'spread' if distribute else 'single'}"
                for j, u in enumerate(edit.updates):
                    tensors[f"{name}.{j}.delta"] = u.delta.contiguous()
                    tensors[f"{name}.{j}.keys"] = u.keys.contiguous()
                    tensors[f"{name}.{j}.residual"] = u.residual.contiguous()
                edit.undo()
                for l, p in ed._stats[model].items():
                    tensors[f"{fam}.C0.{l}"] = p.C0.contiguous()
    save_file(tensors, out)
    print(f"{len(tensors)} tensors → {out}")


def compare(a: str, b: str) -> int:
    from safetensors.torch import load_file

    A, B = load_file(a), load_file(b)
    missing = sorted(set(A) ^ set(B))
    differ = [k for k in sorted(set(A) & set(B)) if not torch.equal(A[k], B[k])]
    for k in differ:
        print(f"differs: {k}  max |Δ| = {float((A[k] - B[k]).abs().max()):.3g}")
    print(f"{len(set(A) & set(B))} tensors compared, {len(differ)} differ, {len(missing)} only on one side {missing[:5]}")
    return int(bool(differ or missing))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--compare", nargs=2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    sys.exit(compare(*a.compare) if a.compare else compute(a.out))
