"""The forward engine: the model's own forward, run in part, for keys and for targets.

Keys (keys.py) and targets (targets.py) read and change the residual stream at one position per
row (its edit token, `at`). Both avoid recomputing what an edit cannot change by starting the
model's own forward (its masks, position ids, rotary embeddings) above a block, from a stored
hidden state:

    Batch                 ids, mask (B, T) right-padded rows; lens (B,); at (B,) edit token per row
    read_at(...)          (N, d) a module's input or output at one position per text; the forward
                          stops right after that module
    entering(model, c, X) inside: blocks 0 … c − 1 are stand-ins and block c's input is X() (B, T, d)
    BlockReturn           what a block returns (a tensor or a tuple), so stand-ins return the same
    prefix_families(...)  rows that share a context template's token prefix (run once, batch 1)
    split_rows(...)       rows sorted by (edit position, length), cut into groups of one split point

and, for the δ optimisation, the two ways to run one step, both mapping δ (n, d) to the final
hidden states at the loss's read points (P, d):

    FullPass    the whole model on the whole batch, δ added by a hook on block L's output
    UpperPass   blocks L + 1 … top only, at positions ≥ each group's first edit token, from the
                block-L output H (B, T, d) and the upper blocks' keys/values at earlier positions
                (B, heads, T, head_dim), both kept once per chunk; the top block's MLP and the
                head only at the read points (targets.py's docstring has the cost argument)
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from .architectures import architecture_of, device_of, module
from .compat import cache_kwargs, cache_of
from .hooks import StandIn, hidden_of, hooks, replace_hidden, stop_after, swapped
from .tokens import encode_batch, shared_prefix

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Right-padded token rows, each with the one position where it is read or changed."""

    ids: torch.Tensor  # (B, T) long
    mask: torch.Tensor  # (B, T) long
    lens: list[int]  # (B,) real length of each row
    at: torch.Tensor  # (B,) long, the edit token of each row


@torch.no_grad()
def read_at(model, tok, texts: list[str], index: list[int], target: nn.Module, *, read_input: bool, batch_size: int = 32) -> torch.Tensor:
    """(len(texts), d) float64 on the CPU: the input (or output hidden state) of `target` at each
    text's index. The forward pass stops right after `target`."""
    out, dev = [], device_of(model)
    for s in range(0, len(texts), batch_size):
        ids, mask, _ = encode_batch(tok, texts[s : s + batch_size], dev)
        rows = torch.arange(ids.shape[0], device=dev)
        idx = torch.tensor(index[s : s + batch_size], device=dev)
        got = {}

        def grab(_m, inputs, output):
            x = inputs[0] if read_input else hidden_of(output)
            got["x"] = x[rows, idx]

        with hooks((target, grab)), stop_after(target):
            model(input_ids=ids, attention_mask=mask)
        out.append(got["x"].to(torch.float64).cpu())
    return torch.cat(out)


class BlockReturn:
    """What a block returns (a tensor, or a tuple whose first item is the hidden state), learnt
    from a hooked forward, so that stand-ins hand on the same kind of object."""

    def __init__(self):
        self.like = None

    def grab(self, got: dict, key: str = "h"):
        """A forward hook that keeps the block's output kind and puts its hidden state in got[key]."""

        def hook(_m, _i, output):
            self.like = output
            got[key] = hidden_of(output)

        return hook

    def wrap(self, hidden: torch.Tensor):
        return replace_hidden(self.like, hidden)


@contextmanager
def entering(model, c: int, hidden: Callable[[], torch.Tensor], kind: BlockReturn, extra: dict[str, nn.Module] | None = None) -> Iterator[None]:
    """Inside the block, blocks 0 … c − 1 are stand-ins: block c − 1 hands on `hidden()` (B, T, d),
    so the model's forward starts at block c from it (the blocks below pass their input through);
    `extra` names further submodules to replace. Everything is restored in `finally`."""
    arch = architecture_of(model)
    blocks = module(model, arch.blocks)

    def give(i: int):
        return lambda h: kind.wrap(hidden() if i == c - 1 else h)

    stand_ins = {f"{arch.blocks}.{i}": StandIn(blocks[i], give(i)) for i in range(c)}
    with swapped(model, {**stand_ins, **(extra or {})}):
        yield


def split_rows(at: list[int], lens: list[int], max_rows: int, overhead: int) -> list[list[int]]:
    """Rows sorted by (edit position, length), cut into contiguous groups minimising
    Σ_g rows_g · (longest_g − first edit position_g) + overhead · #groups  (positions run per step)."""
    order = sorted(range(len(at)), key=lambda r: (at[r], lens[r]))
    s = [at[r] for r in order]
    ln = [lens[r] for r in order]
    B = len(order)
    best = [0] + [float("inf")] * B
    cut = [0] * (B + 1)
    for j in range(1, B + 1):
        top = 0
        for i in range(j - 1, max(-1, j - 1 - max_rows), -1):  # group = order[i:j]
            top = max(top, ln[i])
            c = best[i] + (j - i) * (top - s[i]) + overhead
            if c < best[j]:
                best[j], cut[j] = c, i
    groups, j = [], B
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def prefix_families(ids: list[list[int]], at: list[int], key_len: int = 4, min_shared: int = 4, min_rows: int = 8) -> list[tuple[list[int], int]]:
    """[(rows, P)]: ≥ min_rows rows whose first tokens agree (the rows of one context template)
    and the length P ≥ min_shared of the token prefix they all share, capped at their first edit
    position; the remaining rows form one family with P = 0. (Each family costs a batch-1 forward
    of its prefix and forwards of its own, so small ones are not worth it.)"""
    by_key: dict = {}
    for r, x in enumerate(ids):
        by_key.setdefault(tuple(x[:key_len]) if len(x) > key_len else ("row", r), []).append(r)
    families, rest = [], []
    for rows in by_key.values():
        P = shared_prefix([ids[r] for r in rows], min(at[r] for r in rows))
        if len(rows) >= min_rows and P >= min_shared:
            families.append((rows, P))
        else:
            rest += rows
    if rest:
        families.append((rest, 0))
    return families


# ---------------------------------------------------------------- one δ step, two ways
@dataclass
class StepBatch(Batch):
    """A chunk's rows for the δ optimisation and the P points whose final hidden states the loss
    reads."""

    owner: torch.Tensor  # (B,) request of each row (δ_owner is added at its edit token)
    plain_row: torch.Tensor  # (n,) each request's row without context
    read_b: torch.Tensor  # (P,) row of each read point
    read_t: torch.Tensor  # (P,) position of each read point


class Unsupported(RuntimeError):
    """The upper pass cannot run on this model (its cache does not keep every position)."""


class FullPass:
    """Every step: the whole model on the whole batch, δ added by a hook on block L."""

    def __init__(self, model, layer: int, b: StepBatch):
        self.base, self.b = model.base_model, b
        self.block = module(model, architecture_of(model).blocks)[layer]
        self.rows = torch.arange(b.ids.shape[0], device=b.ids.device)
        self.h0: torch.Tensor | None = None  # (n, d) block L output at the plain rows' edit token, set by the first call

    @contextmanager
    def ready(self) -> Iterator[None]:
        yield

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        """(P, d) final hidden states at the read points with δ (n, d) added."""
        b = self.b

        def add(_m, _i, output):
            h = hidden_of(output)  # (B, T, d)
            if self.h0 is None:
                self.h0 = h[b.plain_row, b.at[b.plain_row]].detach().float()
            new = h.index_put((self.rows, b.at), delta[b.owner].to(h.dtype), accumulate=True)
            return replace_hidden(output, new)

        with hooks((self.block, add)):
            hid = self.base(input_ids=b.ids, attention_mask=b.mask).last_hidden_state  # (B, T, d)
        return hid[b.read_b, b.read_t]


class AtReads(nn.Module):
    """The top block's MLP, run only at the positions the loss reads. Its output elsewhere is 0:
    after the top block only the (position-wise) final norm and the head follow, and they are
    read at those positions only."""

    def __init__(self, mlp: nn.Module, where: Callable[[], tuple[torch.Tensor, torch.Tensor]]):
        super().__init__()
        self.__dict__["_mlp"] = mlp
        self.__dict__["_where"] = where

    def forward(self, x, *args, **kwargs):
        r, t = self._where()  # (p,), (p,)
        y = self._mlp(x[r, t], *args, **kwargs)  # (p, d)
        return y.new_zeros(x.shape[:-1] + y.shape[-1:]).index_put((r, t), y)


@dataclass
class _Group:
    """Rows that share one split point s0 (≤ every row's edit position)."""

    rows: torch.Tensor  # (G,) batch rows
    s0: int
    ids: torch.Tensor  # (G, W) tokens at positions s0 … s0+W−1
    mask: torch.Tensor  # (G, s0+W) attention mask over prefix and suffix
    pos: torch.Tensor  # (G, W) position ids
    h: torch.Tensor  # (G, W, d) block L output at positions ≥ s0, before δ (model dtype)
    kv: list  # per block above L: (keys, values) at positions < s0, as the model's cache holds them (empty if s0 = 0)
    at: torch.Tensor  # (G,) edit position − s0
    owner: torch.Tensor  # (G,)
    read_r: torch.Tensor  # (p_g,) local row of each of the group's read points
    read_t: torch.Tensor  # (p_g,) local position (− s0)


class UpperPass:
    """Blocks 0..L once per chunk; each step blocks L+1 … end on positions ≥ each group's s0.

    Once (no gradient): every row's block-L output H (B, T, d) and the upper blocks' keys/values
    (B, heads, T, head_dim), from forwards over families of rows that share a context prefix
    (the prefix itself run once, batch 1, and handed over as the attention cache).
    Each step: rows regrouped by (edit position, length), see `split_rows`."""

    MAX_ROWS = 256  # rows per forward (bounds the memory of one forward)
    OVERHEAD = 16  # cost of one more step group, in positions run per step (Python + per-call work)

    def __init__(self, model, layer: int, b: StepBatch):
        from transformers import DynamicCache  # transformers ≥ 4.56 cache API

        self._Cache = DynamicCache
        self.model, self.base, self.layer, self.b = model, model.base_model, layer, b
        self.blocks = module(model, architecture_of(model).blocks)
        self.groups: list[_Group] = []
        self.kind = BlockReturn()  # what block L returns, for the stand-ins
        self._current: torch.Tensor | None = None  # (G, W, d) h_L + δ of the group being run
        self._reads: tuple | None = None  # its read points (local row, local position)
        dev = b.ids.device
        at = b.at.tolist()

        # once: H and the upper K/V of every row, family by family
        self._H: torch.Tensor | None = None  # (B, T, d)
        self._KV: list[list[torch.Tensor]] = []  # per block above L: [K, V], each (B, heads, T, head_dim)
        rows_ids = [x[:n].tolist() for x, n in zip(b.ids.cpu(), b.lens)]
        for family, P in prefix_families(rows_ids, at):
            prefix = self._prefix(family[0], P) if P else None
            for part in split_rows([P] * len(family), [b.lens[r] for r in family], self.MAX_ROWS, self.OVERHEAD):  # by length
                self._fill([family[i] for i in part], P, prefix)
        self.h0 = self._H[b.plain_row, b.at[b.plain_row]].float()  # (n, d)

        # per step: groups of rows with one split point each
        read_rows = b.read_b.tolist()
        order = []
        for rows in split_rows(at, b.lens, self.MAX_ROWS, self.OVERHEAD):
            g = self._group(rows)
            mine = {r: k for k, r in enumerate(rows)}
            pts = [p for p, r in enumerate(read_rows) if r in mine]
            g.read_r = torch.tensor([mine[read_rows[p]] for p in pts], dtype=torch.long, device=dev)
            g.read_t = b.read_t[pts] - g.s0
            if bool((g.read_t < 0).any()):
                raise Unsupported("a read position lies before its row's edit token")
            order += pts
            self.groups.append(g)
        self.inverse = torch.argsort(torch.tensor(order, device=dev))  # group order → read-point order
        self._H = None
        self._KV = []

    def _caches(self, cache, T: int) -> list:
        """[(keys, values)] of every block from a forward's cache, each holding all T positions."""
        kv = [(k, v) for k, v, *_ in cache] if cache is not None else []
        if len(kv) != len(self.blocks) or any(k is None or k.shape[-2] != T for k, _ in kv):
            raise Unsupported("the attention cache does not hold every block and position (sliding window?)")
        return kv

    @torch.no_grad()
    def _prefix(self, row: int, P: int) -> tuple[list, torch.Tensor]:
        """The P tokens a family shares, run once (batch 1): every block's (keys, values) and
        block L's output there (1, P, d)."""
        got = {}
        with hooks((self.blocks[self.layer], self.kind.grab(got))):
            out = self.base(input_ids=self.b.ids[row : row + 1, :P], use_cache=True)
        return self._caches(cache_of(out), P), got["h"]

    @torch.no_grad()
    def _fill(self, rows: list[int], P: int, prefix) -> None:
        """H and the upper K/V of `rows` from one forward over their positions ≥ P (the first P,
        shared by all of them, come from `prefix`)."""
        b, L = self.b, self.layer
        dev = b.ids.device
        idx = torch.tensor(rows, dtype=torch.long, device=dev)
        T, G = max(b.lens[r] for r in rows), len(rows)
        got = {}
        past = None
        if P:
            past = self._Cache(ddp_cache_data=[(k.expand(G, *k.shape[1:]), v.expand(G, *v.shape[1:])) for k, v in prefix[0]], config=self.model.config)
        pos = torch.arange(P, T, device=dev).expand(G, T - P)
        with hooks((self.blocks[L], self.kind.grab(got))):
            out = self.base(input_ids=b.ids[idx, P:T], attention_mask=b.mask[idx, :T], position_ids=pos, use_cache=True, **cache_kwargs(self.base, past))
        kv = self._caches(cache_of(out), T)[L + 1 :]
        h = got["h"]  # (G, T − P, d)
        if self._H is None:
            B, Tmax = b.ids.shape
            self._H = h.new_zeros(B, Tmax, h.shape[-1])
            self._KV = [[k.new_zeros(B, *k.shape[1:2], Tmax, k.shape[-1]) for k in pair] for pair in kv]
        self._H[idx, P:T] = h
        if P:
            self._H[idx, :P] = prefix[1]
        for (K, V), (k, v) in zip(self._KV, kv):
            K[idx, :, :T] = k
            V[idx, :, :T] = v

    def _group(self, rows: list[int]) -> _Group:
        """A step group: h_L from its first edit position s0 on, upper K/V before s0."""
        b = self.b
        idx = torch.tensor(rows, dtype=torch.long, device=b.ids.device)
        s0 = min(b.at[idx].tolist())
        T, G = max(b.lens[r] for r in rows), len(rows)
        kv = [(K[idx, :, :s0].clone(), V[idx, :, :s0].clone()) for K, V in self._KV] if s0 > 0 else []
        pos = torch.arange(s0, T, device=idx.device).expand(G, T - s0)
        return _Group(idx, s0, b.ids[idx, s0:T], b.mask[idx, :T], pos, self._H[idx, s0:T].clone(), kv, b.at[idx] - s0, b.owner[idx], None, None)

    @contextmanager
    def ready(self) -> Iterator[None]:
        """Inside the block, blocks 0..L are stand-ins and the top block's MLP runs at the read
        points only (all restored in `finally`)."""
        arch = architecture_of(self.model)
        top = len(self.blocks) - 1
        extra = {}
        if top > self.layer:
            mlp = arch.mlp.format(top)
            extra[mlp] = AtReads(self.model.get_submodule(mlp), lambda: self._reads)
        try:
            with entering(self.model, self.layer + 1, lambda: self._current, self.kind, extra):
                yield
        finally:
            self._current = self._reads = None

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        """(P, d) final hidden states at the read points with δ (n, d) added."""
        outs = []
        for g in self.groups:
            G = g.rows.shape[0]
            self._current = g.h.index_put((torch.arange(G, device=g.h.device), g.at), delta[g.owner].to(g.h.dtype), accumulate=True)
            self._reads = (g.read_r, g.read_t)
            cache, mask = None, g.mask[:, g.s0 :]
            if g.kv:  # the upper blocks attend to positions < s0 through the cache
                stub = g.kv[0][0].new_zeros(G, 1, g.s0, 1)  # blocks ≤ L run no attention; only the cache length is read
                cache = self._Cache(ddp_cache_data=[(stub, stub)] * (self.layer + 1) + g.kv, config=self.model.config)
                mask = g.mask
            out = self.base(input_ids=g.ids, attention_mask=mask, position_ids=g.pos, use_cache=cache is not None, **cache_kwargs(self.base, cache))
            hid = out.last_hidden_state
            outs.append(hid[g.read_r, g.read_t])  # (p_g, d)
        return torch.cat(outs)[self.inverse]


def step_pass(model, layer: int, b: StepBatch, path: str):
    """The pass a δ step runs: "fast" (UpperPass, where the model's cache allows) or "full"."""
    if path == "fast":
        try:
            return UpperPass(model, layer, b)
        except Unsupported as e:
            log.warning("targets: fast path unavailable for this model (%s); using the full forward", e)
    return FullPass(model, layer, b)
