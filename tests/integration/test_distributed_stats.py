"""Key statistics under torch.distributed (2 CPU processes, gloo) equal one process's C0 over the
same tokens, and only rank 0 writes the cache."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from editkit.config import StatsConfig


def _corpus(folder):
    text = "".join(f'<doc id="{i}">\nDocument {i}: the quick brown fox {i} jumps over the lazy dog near river {i % 7}.\n</doc>\n'
                   for i in range(40))
    (folder / "wiki_00").write_text(text)


def _rank(r, world, init, corpus, cache, out):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    from models import tiny, tokenizer

    from editkit.stats import layer_stats

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=r, world_size=world)
    try:
        cfg = StatsConfig(corpus=corpus, n_tokens=600, max_len=16, batch_size=2, cache_dir=cache)
        C = layer_stats(tiny("gpt2"), tokenizer(), [1, 2], cfg, progress=False)
        save_file({str(l): c.contiguous() for l, c in C.items()}, f"{out}/rank{r}.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_processes_give_the_single_process_c0(tmp_path):
    from models import tiny, tokenizer

    from editkit.stats import collect

    _corpus(tmp_path)
    cfg = StatsConfig(corpus=str(tmp_path / "wiki_00"), n_tokens=600, max_len=16, batch_size=2)
    single = collect(tiny("gpt2"), tokenizer(), [1, 2], cfg, progress=False)
    cache = tmp_path / "cache"
    mp.spawn(_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", str(tmp_path / "wiki_00"), str(cache), str(tmp_path)), nprocs=2)
    for r in (0, 1):
        got = load_file(str(tmp_path / f"rank{r}.safetensors"))
        for l in (1, 2):
            assert float((got[str(l)] - single[l]).norm() / single[l].norm()) < 1e-10
    assert len(list(cache.glob("*.safetensors"))) == 2  # one entry per layer, written once (by rank 0)


def test_a_corpus_shorter_than_n_tokens_is_named(tmp_path, caplog):
    """The statistics still come out, over what the corpus has, but the log says that they cover
    fewer tokens than the StatsConfig (and its cache key) claims."""
    import logging

    from models import tiny, tokenizer

    from editkit.stats import collect

    _corpus(tmp_path)
    with caplog.at_level(logging.WARNING, logger="editkit.stats"):
        collect(tiny("gpt2"), tokenizer(), [1], StatsConfig(corpus=str(tmp_path / "wiki_00"), n_tokens=600, max_len=16, batch_size=2),
                progress=False)
        assert not caplog.records
        collect(tiny("gpt2"), tokenizer(), [1], StatsConfig(corpus=str(tmp_path / "wiki_00"), n_tokens=10**6, max_len=16, batch_size=2),
                progress=False)
    assert "ran out after" in caplog.text and "1000000 tokens asked" in caplog.text
