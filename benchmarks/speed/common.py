"""Shared set-up of the speed benchmarks: GPT-2 small's shape (random init, real tokenizer),
CounterFact requests, the 11 context templates, and a little timing/load bookkeeping."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from editkit import EditRequest
from editkit.context import context_templates
from editkit.stats import DATA

log = logging.getLogger("bench")
TOKENIZER = DATA / "gpt2-tokenizer"
COUNTERFACT = DATA / "counterfact" / "counterfact-train.json"
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


def templates(model, tok, n_context: int = 10, length: int = 10, seed: int = 0) -> list[str]:
    """plain + n_context generated prefixes (editkit's default kind), cached on disk: generating
    them is not what these benchmarks measure. The model must be gpt2_small(seed=0)."""
    path = CACHE / f"templates-gpt2small-seed0-{n_context}x{length}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    t = context_templates(model, tok, "generated", n_context, length, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(t))
    return t


def load() -> str:
    """The 1/5/15-minute load averages, to note beside every timing (2 shared cores)."""
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Timer:
    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t
