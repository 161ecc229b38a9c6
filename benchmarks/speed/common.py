"""Shared set-up of the speed benchmarks: GPT-2 small's shape (random init, real tokenizer),
CounterFact requests, the 11 context templates, and a little timing/load bookkeeping.

    ap = parser(__doc__); ap.add_argument(...); args = ap.parse_args()
    b = start(args, n=N, offset=0)     # logging, torch threads, b.model, b.tok, b.templates, b.requests
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from editkit import EditRequest
from editkit.context import context_templates
from editkit.paths import data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the serial reference of the targets lives with the tests
log = logging.getLogger("bench")
TOKENIZER = data_dir() / "gpt2-tokenizer"
COUNTERFACT = data_dir() / "counterfact" / "counterfact-train.json"
CACHE = Path(os.environ.get("EDITKIT_BENCH_CACHE", Path.home() / ".cache" / "editkit-bench"))
LAYERS = [4, 5, 6, 7, 8]  # targets at layer 8


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def gpt2_small(seed: int = 0):
    """(model, tok): GPT-2 small's shape, randomly initialised (seeded), real GPT-2 tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config.from_pretrained(TOKENIZER)).eval()
    return model, AutoTokenizer.from_pretrained(TOKENIZER)


def requests(n: int, offset: int = 0) -> list[EditRequest]:
    records = json.loads(COUNTERFACT.read_text())[offset : offset + n]
    return [EditRequest.from_counterfact(r) for r in records]


def templates(model, tok, n_context: int = 10, length: int = 10, seed: int = 0, kind: str = "memit") -> list[list[str]]:
    """Template groups (editkit.context; MEMIT's kind: [["{}"], n_context prefixes]), cached on
    disk: generating them is not what these benchmarks measure. The model must be gpt2_small(seed=0)."""
    path = CACHE / f"templates-gpt2small-seed0-{kind}-{n_context}x{length}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    t = context_templates(model, tok, kind, n_context, length, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(t))
    return t


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The script's docstring as its help, and --threads (torch threads; 1 on this shared machine)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    return ap


@dataclass
class Bench:
    model: object
    tok: object
    templates: list[list[str]] | None  # [["{}"], 10 generated prefixes] (None when not asked for)
    requests: list[EditRequest]  # the first n CounterFact records from `offset`


def start(args: argparse.Namespace, n: int = 0, offset: int = 0, with_templates: bool = True) -> Bench:
    """Logging, `torch.set_num_threads(args.threads)`, GPT-2 small's shape (seed 0), the context
    templates and n CounterFact requests: what every benchmark here measures on."""
    setup_logging()
    torch.set_num_threads(args.threads)
    model, tok = gpt2_small()
    return Bench(model, tok, templates(model, tok) if with_templates else None, requests(n, offset) if n else [])


def timed(fn):
    """(fn(), wall s, CPU s of the process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def load() -> str:
    """The 1/5/15-minute load averages, to note beside every timing (2 shared cores)."""
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """VmHWM: the peak RSS since the process started or since "5" was written to /proc/self/clear_refs."""
    return _status_mb("VmHWM")


class Timer:
    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t
