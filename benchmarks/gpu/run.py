"""The GPU check, one prepared script for a session lent a GPU (≤ 8 minutes on one H200):

    python benchmarks/gpu/run.py                    # cuda: everything below, RESULTS.md rewritten
    python benchmarks/gpu/run.py --device cpu --quick   # the same steps at toy sizes (CI's check of the script)

1. the unit and integration tests (`pytest tests/unit tests/integration -q`), on a machine with CUDA;
2. an fp16 and a bf16 edit of a random GPT-2 small on the device, undone bit-exactly;
3. 1,000 CounterFact edits in one MEMIT + spread batch (5 layers, 20 steps) on a random GPT-2
   small and a random GPT-2 XL shape (built from config, float32), with absolute time per phase
   and peak device memory;
results appended as JSON lines to results.jsonl and as a table to RESULTS.md (with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def peak(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB (Linux)


def reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpt2(shape: str, device: str, dtype=torch.float32):
    from transformers import GPT2Config, GPT2LMHeadModel

    sizes = {"tiny": dict(n_layer=4, n_embd=64, n_head=4), "small": dict(n_layer=12, n_embd=768, n_head=12),
             "xl": dict(n_layer=48, n_embd=1600, n_head=25)}[shape]
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=50257, **sizes)).to(device=device, dtype=dtype).eval()


def tokenizer():
    from transformers import AutoTokenizer

    from editkit.paths import data_dir

    return AutoTokenizer.from_pretrained(data_dir() / "gpt2-tokenizer")


def requests(n: int):
    from editkit.evaluation import load

    return load("counterfact:train", n=n).requests()


def half_precision_undo(device: str, shape: str) -> list[dict]:
    from editkit import Editor

    out = []
    tok = tokenizer()
    for dtype in (torch.float16, torch.bfloat16):
        model = gpt2(shape, device, dtype)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        layers = [1, 2] if shape == "tiny" else [3, 4, 5]
        ed = Editor(objective="memit", strategy="spread", layers=layers, steps=5, n_tokens=2000, max_len=64, progress=False)
        edit = ed.edit(model, tok, requests(4))
        changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
        edit.undo()
        exact = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        out.append({"check": "half_precision_undo", "dtype": str(dtype), "device": device, "edited": changed, "undo_bit_exact": exact})
    return out


def many_edits(device: str, shape: str, n: int, n_tokens: int) -> dict:
    from editkit import Editor

    tok = tokenizer()
    reqs = requests(n)
    model = gpt2(shape, device)
    L = model.config.n_layer
    layers = [1, 2] if shape == "tiny" else list(range(L // 3 - 4, L // 3 + 1))
    ed = Editor(objective="memit", strategy="spread", layers=layers, steps=20, n_tokens=n_tokens, max_len=128, progress=False)
    reset(device)
    t0 = time.perf_counter()
    ed.prepare(model, tok)  # key statistics (and context templates)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    edit = ed.edit(model, tok, reqs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    took = sum(edit.info["took"]) / len(edit.info["took"])
    edit.undo()
    return {"check": "many_edits", "shape": shape, "device": device, "edits": n, "layers": layers, "stats_tokens": n_tokens,
            "seconds_stats": round(t1 - t0, 2), "seconds_edit": round(t2 - t1, 2), "seconds_targets": round(edit.info["seconds"]["targets"], 2),
            "seconds_distribute": round(edit.info["seconds"]["distribute"], 2), "peak_gib": round(peak(device), 2), "took_fraction": round(took, 3),
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu", "torch": torch.__version__}


def table(rows: list[dict]) -> str:
    lines = ["| check | shape / dtype | device | edits | stats s | edit s (targets + distribute) | peak GiB | result |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["check"] == "many_edits":
            lines.append(f"| {r['edits']} edits, MEMIT+spread {r['layers']} | {r['shape']} | {r['gpu']} | {r['edits']} | {r['seconds_stats']} | "
                         f"{r['seconds_edit']} ({r['seconds_targets']} + {r['seconds_distribute']}) | {r['peak_gib']} | took {r['took_fraction']} |")
        elif r["check"] == "half_precision_undo":
            lines.append(f"| edit + undo | {r['dtype']} | {r['device']} | 4 | | | | edited {r['edited']}, undo bit-exact {r['undo_bit_exact']} |")
        else:
            lines.append(f"| tests | | {r['device']} | | | {r['seconds']} s | | rc {r['rc']}: {r['summary']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="toy sizes (the CPU check of this script)")
    ap.add_argument("--no-tests", action="store_true")
    ap.add_argument("--out", default=None, help="folder for results.jsonl and RESULTS.md (default: print only)")
    a = ap.parse_args(argv)
    rows = []
    if not a.no_tests:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "tests/unit", "tests/integration"], cwd=ROOT, capture_output=True, text=True)
        rows.append({"check": "tests", "device": a.device, "rc": p.returncode, "seconds": round(time.perf_counter() - t0, 1),
                     "summary": (p.stdout.strip().splitlines() or [""])[-1]})
    shape = "tiny" if a.quick else "small"
    rows += half_precision_undo(a.device, shape)
    rows.append(many_edits(a.device, shape, 8 if a.quick else 1000, 2000 if a.quick else 100_000))
    if not a.quick:
        rows.append(many_edits(a.device, "xl", 1000, 100_000))
    print(table(rows))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "results.jsonl").open("a") as f:
            for r in rows:
                f.write(json.dumps({**r, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "host": os.uname().nodename}) + "\n")
        (out / "RESULTS.md").write_text("# GPU check\n\n`python benchmarks/gpu/run.py --out benchmarks/gpu`\n\n" + table(rows) + "\n")
    bad = [r for r in rows if (r["check"] == "tests" and r["rc"]) or (r["check"] == "half_precision_undo" and not (r["edited"] and r["undo_bit_exact"]))]
    return int(bool(bad))


if __name__ == "__main__":
    sys.exit(main())
