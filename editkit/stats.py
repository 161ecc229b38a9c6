"""Key statistics C0 = E[k kᵀ] (d_in, d_in) per layer, streamed over a text corpus and cached.

    C0 = (1/N) Σ_t k_t k_tᵀ      over N tokens t of the corpus (padding excluded), uncentred

One forward pass collects every requested layer at once and stops after the deepest one. Each
batch's Kᵀ K is formed in the model's compute dtype and accumulated in float64.

Cache: one safetensors file (C0 as float64 and the token count) plus a JSON sidecar per layer,
named by a hash of everything that changes the result (model identity, layer, corpus identity,
token count, max sequence length, dtype). The sidecar also stores the file's SHA-256; a
corrupt, truncated or mismatched entry is detected, logged, and rebuilt, never used.
Search order: the model's own folder of shipped statistics (read-only), then the cache directory
($EDITKIT_CACHE or ~/.cache/editkit, or StatsConfig.cache_dir).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import distributed, paths
from .architectures import architecture_of, context_length, device_of, module, read_weight
from .config import StatsConfig
from .corpora import corpus_identity, documents
from .hooks import eval_mode, hooks, stop_after
from .interop import find_npz, read_mom2_npz
from .linalg import check_finite
from .models import model_identity
from .tokens import pad_id, pad_rows, pieces

log = logging.getLogger(__name__)

def cache_dir(cfg: StatsConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir is not None else paths.cache_dir()


def token_chunks(tok, corpus: str, max_len: int, n_tokens: int, n_docs: int | None = None) -> Iterator[list[int]]:
    """Chunks of ≤ max_len tokens (no chunk crosses a document) until n_tokens are given; with
    n_docs, the first max_len tokens of each of the first n_docs documents instead."""
    given = 0
    for d, doc in enumerate(documents(corpus)):
        ids = tok(doc, add_special_tokens=False, verbose=False)["input_ids"]
        if n_docs is not None:
            if d >= n_docs:
                return
            if len(ids) >= 2:
                yield ids[:max_len]
            continue
        for chunk in pieces(ids, max_len):
            chunk = chunk[: n_tokens - given]
            if len(chunk) < 2:
                continue
            yield chunk
            given += len(chunk)
            if given >= n_tokens:
                return


def token_batches(tok, corpus: str, max_len: int, n_tokens: int, batch_size: int, n_docs: int | None = None) -> Iterator[list[list[int]]]:
    """`token_chunks` in batches of `batch_size` chunks (the last batch may be smaller)."""
    batch: list[list[int]] = []
    for chunk in token_chunks(tok, corpus, max_len, n_tokens, n_docs):
        batch.append(chunk)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def chunk_len(model, cfg: StatsConfig) -> int:
    """Tokens per chunk: cfg.max_len (None: the model's context), clipped to the model's context."""
    ctx = context_length(model)
    if cfg.max_len is None and ctx is None:
        raise ValueError("StatsConfig.max_len is None (the model's context) but the model's config names no context length; set max_len")
    if cfg.max_len is not None and ctx is not None and cfg.max_len > ctx:
        log.info("key statistics: max_len %d is longer than the model's context of %d tokens; chunks of %d are used", cfg.max_len, ctx, ctx)
    return min(n for n in (cfg.max_len, ctx) if n is not None)


# ---------------------------------------------------------------- collection
GRAM_BLOCK = 768  # Xᵀ X is formed in (GRAM_BLOCK × GRAM_BLOCK) tiles, upper triangle only


def _tiles(d: int) -> list[slice]:
    return [slice(s, min(s + GRAM_BLOCK, d)) for s in range(0, d, GRAM_BLOCK)]


def _add_gram(acc: torch.Tensor, x: torch.Tensor) -> None:
    """acc (d, d) float64 += Xᵀ X for x (tokens, d), upper-triangular tiles only: Xᵀ X is
    symmetric, so the lower tiles are copies (`_symmetrize`, once at the end); with 4 tiles a
    side this is 10 of 16 tile products."""
    tiles = _tiles(x.shape[1])
    for i, a in enumerate(tiles):
        xa = x[:, a]
        for b in tiles[i:]:
            acc[a, b] += (xa.T @ x[:, b]).to(torch.float64)


def _symmetrize(acc: torch.Tensor) -> torch.Tensor:
    tiles = _tiles(acc.shape[0])
    for i, a in enumerate(tiles):
        for b in tiles[i + 1 :]:
            acc[b, a] = acc[a, b].T
    return acc


@torch.no_grad()
def collect(model, tok, layers: list[int], cfg: StatsConfig, progress: bool = True) -> dict[int, torch.Tensor]:
    """{layer: C0 (d_in, d_in) float64} from one pass over the corpus."""
    arch = architecture_of(model)
    projs = {l: module(model, arch.proj, l) for l in layers}
    deepest = projs[max(layers)]
    dtype = getattr(torch, cfg.dtype)
    dev = device_of(model)
    sums: dict[int, torch.Tensor] = {}
    count = 0
    state = {}

    def grab(layer):
        def fn(_m, inputs, _o):
            x = inputs[0][state["mask"]].to(dtype)  # (tokens, d_in)
            if layer not in sums:
                sums[layer] = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
            _add_gram(sums[layer], x)

        return fn

    pad = pad_id(tok)
    bar = tqdm(total=cfg.n_tokens if cfg.n_docs is None else None, desc="key statistics", unit="tok", disable=not progress, leave=False)

    def run(batch):
        ids, mask = pad_rows(batch, pad)
        state["mask"] = mask.bool().to(dev)
        with hooks(*((p, grab(l)) for l, p in projs.items())), stop_after(deepest):
            model(input_ids=ids.to(dev), attention_mask=mask.to(dev))
        return int(mask.sum())

    try:
        with eval_mode(model):
            for i, batch in enumerate(token_batches(tok, cfg.corpus, chunk_len(model, cfg), cfg.n_tokens, cfg.batch_size, cfg.n_docs)):
                if not distributed.mine(i):  # under torch.distributed each rank runs its share (editkit.distributed)
                    continue
                got = run(batch)
                count += got
                bar.update(got)
    finally:
        bar.close()
    if distributed.active():
        for l in layers:  # a rank with no batch still takes part in every reduction
            if l not in sums:
                d = read_weight(model, l).shape[1]  # d_in
                sums[l] = torch.zeros(d, d, dtype=torch.float64, device=dev)
            distributed.sum_(sums[l])
        count = int(distributed.sum_(torch.tensor([count], dtype=torch.float64, device=dev)).item())
    if count == 0:
        raise ValueError(f"the corpus {cfg.corpus!r} gave no tokens; point StatsConfig.corpus at a folder of text")
    out = {l: (_symmetrize(s) / count).cpu() for l, s in sums.items()}
    for l, c in out.items():
        check_finite(c, f"the key statistics of layer {l}")
    log.info("collected key statistics for layers %s over %d tokens", layers, count)
    if cfg.n_docs is None and count < cfg.n_tokens:
        log.warning("the corpus %r ran out after %d of the %d tokens asked: these statistics are over less text than "
                    "StatsConfig.n_tokens says (and are cached under it); give a longer corpus or a smaller n_tokens",
                    cfg.corpus, count, cfg.n_tokens)
    return out


# ---------------------------------------------------------------- cache
def cache_key(model, layer: int, cfg: StatsConfig) -> dict:
    return {
        "model": model_identity(model),
        "layer": layer,
        "module": architecture_of(model).proj.format(layer),
        "corpus": corpus_identity(cfg.corpus),
        "n_tokens": cfg.n_tokens,
        "max_len": chunk_len(model, cfg),
        "dtype": cfg.dtype,
        "format": 1,
        **({"n_docs": cfg.n_docs} if cfg.n_docs is not None else {}),
    }


def entry_name(key: dict) -> str:
    return "c0-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_entry(folder: Path, key: dict) -> torch.Tensor | None:
    """C0 from a cache entry, or None when absent; a bad entry is logged and ignored."""
    base = folder / entry_name(key)
    st, js = base.with_suffix(".safetensors"), base.with_suffix(".json")
    if not st.exists() or not js.exists():
        return None
    try:
        meta = json.loads(js.read_text())
        if meta.get("key") != key:
            raise ValueError("its key does not match")
        if meta.get("sha256") != _sha(st):
            raise ValueError("its checksum does not match (corrupt or truncated)")
        C0 = load_file(str(st))["C0"]
        d = meta["d_in"]
        if str(C0.dtype) != meta.get("stored_as", "torch.float64") or tuple(C0.shape) != (d, d):
            raise ValueError("its tensor has the wrong shape or dtype")
        check_finite(C0, "cached C0")
        return C0.to(torch.float64)
    except Exception as e:  # noqa: BLE001 — any failure means: rebuild
        log.warning("ignoring cache entry %s: %s; it will be rebuilt", st, e)
        return None


def write_entry(folder: Path, key: dict, C0: torch.Tensor, dtype: torch.dtype = torch.float64) -> Path:
    """Write one entry. `dtype` is the storage dtype (float64 in the cache; shipped statistics may
    be stored as float32 to stay small — they are read back as float64 either way)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / entry_name(key)
    st, js = base.with_suffix(".safetensors"), base.with_suffix(".json")
    tmp = st.with_suffix(".tmp")
    save_file({"C0": C0.to(dtype).contiguous()}, str(tmp))
    os.replace(tmp, st)
    meta = {"key": key, "d_in": C0.shape[0], "stored_as": str(dtype), "sha256": _sha(st)}
    js.write_text(json.dumps(meta, indent=1))
    return st


def shipped_dir(model) -> Path | None:
    path = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    p = Path(path) / "stats"
    return p if path and p.is_dir() else None


def layer_stats(model, tok, layers: list[int], cfg: StatsConfig, progress: bool = True) -> dict[int, torch.Tensor]:
    """{layer: C0} from the shipped folder, the cache, or one collection pass for the missing ones."""
    if cfg.corpus.startswith("npz:"):  # statistics the originals published or computed (editkit.interop)
        return {l: read_mom2_npz(find_npz(cfg.corpus[4:], model, l))[0] for l in layers}
    out: dict[int, torch.Tensor] = {}
    keys = {l: cache_key(model, l, cfg) for l in layers}
    for l in layers:
        for folder in filter(None, (shipped_dir(model), cache_dir(cfg))):
            C0 = read_entry(folder, keys[l])
            if C0 is not None:
                out[l] = C0
                break
    missing = [l for l in layers if l not in out]
    if missing:
        fresh = collect(model, tok, missing, cfg, progress and distributed.rank() == 0)
        for l in missing:
            if distributed.rank() == 0:  # one writer; every rank has the all-reduced C0
                write_entry(cache_dir(cfg), keys[l], fresh[l])
            out[l] = fresh[l]
        distributed.barrier()
    return out
