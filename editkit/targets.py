"""Target values: the residual-stream vector each request should produce at the last edited layer.

For request i, δ_i (d,) is added at its edit token (the subject's last token, or what
`TargetConfig.fact_token` names) in every one of its sequences, and optimised with Adam, as
MEMIT's `compute_z` and ROME's `compute_v` do:

    loss_i = mean_c NLL(target_new | context_c + prompt_i)                  (mean per token, every
                                                                             template of every group)
           + kl_factor · KL(p_δ ‖ p_0) of the next token at the edit token of "{subject} is a"
           + weight_decay · ‖δ_i‖ / ‖h_i‖²                                   (the norm, not its square)
    after each step ‖δ_i‖ ≤ clamp_factor · ‖h_i‖;  request i stops once loss_i < early_stop, or
    (MPES, `mpes_hits` = k > 0; ENCORE) once target_new has been the top-1 token at every target
    position of its prefixed rows at k iterations, checked before each step
    target z_i = H_i + δ_i   (d,)   H_i: block L's output at the edit token of the plain prompt

h_i is what δ is measured against (`delta_module`): block L's output (MEMIT: δ is added to the
block output) or block L's MLP output (ROME: δ is added to the MLP output). Adding δ to either at
one position changes the residual stream identically, so only the clamp and the weight decay
differ; Z is reported at the block output in both cases (for ROME, Z − H = δ is the MLP value's
change). A rewriting row is tokenised as the originals do: the filled prompt and the decoded
target without its last token, as one string (where the tokenizer's decoder keeps the target's
leading space; otherwise the ids are appended); its last len(target) positions predict the target.

All requests of a chunk are optimised together. The losses are separable and Adam acts
element-wise, so this gives the same δ as optimising each request alone (`serial=True`).
Logits are computed only where the loss reads them (target tokens, the KL position).

How a step runs the model (`TargetConfig.path`; both give the same δ up to float rounding):

  "full"  the whole model on the padded batch, δ added by a hook on block L's output.
  "fast"  δ changes the network only *above* block L and only *at or after* each row's subject
          token, and the loss reads the top only at a few points. So, once per chunk and
          without gradient, every row's
              H     (T, d)                    block L's output at every position
              K, V  (heads, T, head_dim)      of each block above L (their attention cache)
          are kept (rows of one context template share their prefix: it is run once, batch 1,
          and handed to the others as the attention cache). Each step then runs blocks
          L+1 … top on positions ≥ s0 only, s0 ≤ the subject position of every row of a group
          (rows are sorted by subject position and length and cut into groups so that little
          is computed twice or on padding), the top block's MLP only at the read points, and
          the head only there. It is the model's own forward (its masks, position ids, rotary
          embeddings) with blocks 0..L swapped for stand-ins that hand back H + δ, and the
          stored K/V at positions < s0 passed as the attention cache; the originals are put back
          in `finally`. A model whose cache does not keep every position (sliding window)
          falls back to "full" with a warning.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from .architectures import architecture_of, context_length, device_of, module
from .compat import cache_kwargs, cache_of
from .config import TargetConfig
from .context import flatten
from .hooks import StandIn, frozen, hidden_of, hooks, replace_hidden, swapped
from .keys import locate, read_at
from .requests import EditRequest
from .tokens import edit_position, pad_id, pad_rows, shared_prefix, target_ids

log = logging.getLogger(__name__)


@dataclass
class Targets:
    Z: torch.Tensor  # (d, n) float64 target hidden states at the output of block L
    H: torch.Tensor  # (d, n) float64 hidden states before the edit
    losses: torch.Tensor  # (n,) final loss of each request
    steps: torch.Tensor  # (n,) Adam steps each request took
    nll0: torch.Tensor | None = None  # (n,) target NLL before any δ (the loss at δ = 0)
    nll: torch.Tensor | None = None  # (n,) target NLL at the final δ


@dataclass
class _Rows:
    ids: list[list[int]]  # token ids of every row
    subj: list[int]  # where δ is added
    owner: list[int]  # request of each row
    tgt_pos: list[list[int]]  # positions whose logits predict target tokens (rewrite rows)
    tgt_ids: list[list[int]]
    kl_row: list[int]  # per request: its KL row
    plain_row: list[int]  # per request: its row without context prefix
    kl_pos: list[int]  # per request: where its KL row is read (its edit token)


def _rows(tok, requests: list[EditRequest], templates, kl_prompt: str, fact_token: str = "subject_last") -> _Rows:
    """Rows of every request under every template (groups flattened; the first must be "{}"),
    then its KL row."""
    templates, _ = flatten(templates)
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the plain prompt '{{}}', got {templates[0]!r}")
    r = _Rows([], [], [], [], [], [], [], [])
    for i, req in enumerate(requests):
        t_ids = target_ids(tok, req.target_new)
        given = tok.decode(t_ids[:-1])
        # the originals append the decoded target prefix to the prompt as text; a decoder that drops
        # the target's leading space (sentencepiece) would glue the words, so then the ids are appended
        as_text = given.startswith(" ") or not given
        for c, ctx in enumerate(templates):
            text, last = edit_position(tok, ctx.replace("{}", req.prompt, 1), req.subject, fact_token)
            ids = tok(text + given)["input_ids"] if as_text else tok(text)["input_ids"] + t_ids[:-1]
            if c == 0:
                r.plain_row.append(len(r.ids))
            r.ids.append(ids)
            r.subj.append(last)
            r.owner.append(i)
            r.tgt_pos.append(list(range(len(ids) - len(t_ids), len(ids))))
            r.tgt_ids.append(t_ids)
        text, last = edit_position(tok, kl_prompt, req.subject, fact_token)
        r.kl_row.append(len(r.ids))
        r.kl_pos.append(last)
        r.ids.append(tok(text)["input_ids"])
        r.subj.append(last)
        r.owner.append(i)
        r.tgt_pos.append([])
        r.tgt_ids.append([])
    return r


def compute_targets(
    model, tok, requests: list[EditRequest], layer: int, templates: list[str], cfg: TargetConfig, *, chunk: int = 64, progress: bool = True
) -> Targets:
    """Targets for all requests at the output of block `layer` (batched, or serial if cfg.serial)."""
    size = 1 if cfg.serial else chunk
    parts = []
    bar = tqdm(total=len(requests), desc="targets", disable=not progress, leave=False)
    with frozen(model):
        for s in range(0, len(requests), size):
            parts.append(_optimise(model, tok, requests[s : s + size], layer, templates, cfg))
            bar.update(len(requests[s : s + size]))
    bar.close()
    return Targets(*(torch.cat([getattr(p, f) for p in parts], dim=-1) for f in ("Z", "H", "losses", "steps", "nll0", "nll")))


# ---------------------------------------------------------------- the padded batch and its reads
@dataclass
class _RowBatch:
    """All rows of a chunk, right-padded, and the P points whose logits the loss reads:
    first every target token (n_tok of them), then the edit token of each request's KL row (n)."""

    ids: torch.Tensor  # (B, T) long
    mask: torch.Tensor  # (B, T) long
    lens: list[int]  # (B,) real length of each row
    subj: torch.Tensor  # (B,) where δ is added
    owner: torch.Tensor  # (B,) request of each row
    plain_row: torch.Tensor  # (n,) each request's row without context
    read_b: torch.Tensor  # (P,) row of each read point
    read_t: torch.Tensor  # (P,) position of each read point
    y: torch.Tensor  # (n_tok,) target token read at each of the first n_tok points
    weight: torch.Tensor  # (n_tok,) NLL weight: 1 / (tokens in the row · rows of the request)


def _check_length(model, rows: _Rows, requests) -> None:
    """Every row fits the model's context (positions beyond it have no embedding)."""
    limit = context_length(model)
    longest = max(range(len(rows.ids)), key=lambda b: len(rows.ids[b]))
    if limit is not None and len(rows.ids[longest]) > limit:
        r = requests[rows.owner[longest]]
        raise ValueError(
            f"request {r.prompt!r} (subject {r.subject!r}, target {r.target_new!r}) needs {len(rows.ids[longest])} tokens "
            f"with its context template and target, but this model's context is {limit} tokens: shorten the prompt or "
            "the target, or use shorter context templates (context='none' or fewer n_context / context_len)."
        )


def _batch(tok, rows: _Rows, n: int, dev) -> _RowBatch:
    B = len(rows.ids)
    ids, mask = pad_rows(rows.ids, pad_id(tok))
    read_b, read_t, y = [], [], []
    for b in range(B):
        read_b += [b] * len(rows.tgt_pos[b])
        read_t += rows.tgt_pos[b]
        y += rows.tgt_ids[b]
    read_b += rows.kl_row
    read_t += rows.kl_pos
    owner = torch.tensor(rows.owner)
    tb = torch.tensor(read_b[: len(y)], dtype=torch.long)
    # NLL normalisation: mean over tokens within a row, then mean over the request's rows
    row_len = torch.tensor([max(len(t), 1) for t in rows.tgt_ids], dtype=torch.float32)
    rows_per_req = torch.bincount(owner[tb.unique()], minlength=n).float()
    weight = 1.0 / (row_len[tb] * rows_per_req[owner[tb]])
    as_long = lambda v: torch.tensor(v, dtype=torch.long, device=dev)  # noqa: E731
    return _RowBatch(
        ids.to(dev), mask.to(dev), [len(x) for x in rows.ids], as_long(rows.subj), owner.to(dev),
        as_long(rows.plain_row), as_long(read_b), as_long(read_t), as_long(y), weight.to(dev),
    )


# ---------------------------------------------------------------- the two ways to run a step
class _FullPass:
    """Every step: the whole model on the whole batch, δ added by a hook on block L."""

    def __init__(self, model, layer: int, b: _RowBatch):
        self.base, self.b = model.base_model, b
        self.block = module(model, architecture_of(model).blocks)[layer]
        self.rows = torch.arange(b.ids.shape[0], device=b.ids.device)
        self.h0: torch.Tensor | None = None  # (n, d) block L output at the plain rows' subject, set by the first call

    @contextmanager
    def ready(self) -> Iterator[None]:
        yield

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        """(P, d) final hidden states at the read points with δ (n, d) added."""
        b = self.b

        def add_delta(_m, _i, output):
            h = hidden_of(output)  # (B, T, d)
            if self.h0 is None:
                self.h0 = h[b.plain_row, b.subj[b.plain_row]].detach().float()
            new = h.index_put((self.rows, b.subj), delta[b.owner].to(h.dtype), accumulate=True)
            return replace_hidden(output, new)

        with hooks((self.block, add_delta)):
            hid = self.base(input_ids=b.ids, attention_mask=b.mask).last_hidden_state  # (B, T, d)
        return hid[b.read_b, b.read_t]


class _Unsupported(RuntimeError):
    pass


class _AtReads(nn.Module):
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
    """Rows that share one split point s0 (≤ every row's subject position)."""

    rows: torch.Tensor  # (G,) batch rows
    s0: int
    ids: torch.Tensor  # (G, W) tokens at positions s0 … s0+W−1
    mask: torch.Tensor  # (G, s0+W) attention mask over prefix and suffix
    pos: torch.Tensor  # (G, W) position ids
    h: torch.Tensor  # (G, W, d) block L output at positions ≥ s0, before δ (model dtype)
    kv: list  # per block above L: (keys, values) at positions < s0, as the model's cache holds them (empty if s0 = 0)
    at: torch.Tensor  # (G,) subject position − s0
    owner: torch.Tensor  # (G,)
    read_r: torch.Tensor  # (p_g,) local row of each of the group's read points
    read_t: torch.Tensor  # (p_g,) local position (− s0)


def _split(subj: list[int], lens: list[int], max_rows: int, overhead: int) -> list[list[int]]:
    """Rows sorted by (subject position, length), cut into contiguous groups minimising
    Σ_g rows_g · (longest_g − first subject_g) + overhead · #groups  (positions run per step)."""
    order = sorted(range(len(subj)), key=lambda r: (subj[r], lens[r]))
    s = [subj[r] for r in order]
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


def _families(ids: list[list[int]], subj: list[int], key_len: int = 4, min_shared: int = 4, min_rows: int = 8) -> list[tuple[list[int], int]]:
    """[(rows, P)]: ≥ min_rows rows whose first tokens agree (the rows of one context template)
    and the length P ≥ min_shared of the token prefix they all share, capped at their first
    subject position; the remaining rows form one family with P = 0. (Each family costs a
    batch-1 forward of its prefix and forwards of its own, so small ones are not worth it.)"""
    by_key: dict = {}
    for r, x in enumerate(ids):
        by_key.setdefault(tuple(x[:key_len]) if len(x) > key_len else ("row", r), []).append(r)
    families, rest = [], []
    for rows in by_key.values():
        P = shared_prefix([ids[r] for r in rows], min(subj[r] for r in rows))
        if len(rows) >= min_rows and P >= min_shared:
            families.append((rows, P))
        else:
            rest += rows
    if rest:
        families.append((rest, 0))
    return families


class _UpperPass:
    """Blocks 0..L once per chunk; each step blocks L+1 … end on positions ≥ each group's s0.

    Once (no gradient): every row's block-L output H (B, T, d) and the upper blocks' keys/values
    (B, heads, T, head_dim), from forwards over families of rows that share a context prefix
    (the prefix itself run once, batch 1, and handed over as the attention cache).
    Each step: rows regrouped by (subject position, length), see `_split`."""

    MAX_ROWS = 256  # rows per forward (bounds the memory of one forward)
    OVERHEAD = 16  # cost of one more step group, in positions run per step (Python + per-call work)

    def __init__(self, model, layer: int, b: _RowBatch):
        from transformers import DynamicCache  # transformers ≥ 4.56 cache API

        self._Cache = DynamicCache
        self.model, self.base, self.layer, self.b = model, model.base_model, layer, b
        self.blocks = module(model, architecture_of(model).blocks)
        self.groups: list[_Group] = []
        self._template = None  # block L's output object (tensor or tuple), for the stand-ins
        self._current: torch.Tensor | None = None  # (G, W, d) h_L + δ of the group being run
        self._reads: tuple | None = None  # its read points (local row, local position)
        dev = b.ids.device
        subj = b.subj.tolist()

        # once: H and the upper K/V of every row, family by family
        self._H: torch.Tensor | None = None  # (B, T, d)
        self._KV: list[list[torch.Tensor]] = []  # per block above L: [K, V], each (B, heads, T, head_dim)
        rows_ids = [x[:n].tolist() for x, n in zip(b.ids.cpu(), b.lens)]
        for family, P in _families(rows_ids, subj):
            prefix = self._prefix(family[0], P) if P else None
            for part in _split([P] * len(family), [b.lens[r] for r in family], self.MAX_ROWS, self.OVERHEAD):  # by length
                self._fill([family[i] for i in part], P, prefix)
        self.h0 = self._H[b.plain_row, b.subj[b.plain_row]].float()  # (n, d)

        # per step: groups of rows with one split point each
        read_rows = b.read_b.tolist()
        order = []
        for rows in _split(subj, b.lens, self.MAX_ROWS, self.OVERHEAD):
            g = self._group(rows)
            mine = {r: k for k, r in enumerate(rows)}
            pts = [p for p, r in enumerate(read_rows) if r in mine]
            g.read_r = torch.tensor([mine[read_rows[p]] for p in pts], dtype=torch.long, device=dev)
            g.read_t = b.read_t[pts] - g.s0
            if bool((g.read_t < 0).any()):
                raise _Unsupported("a read position lies before its row's subject")
            order += pts
            self.groups.append(g)
        self.inverse = torch.argsort(torch.tensor(order, device=dev))  # group order → read-point order
        self._H = None
        self._KV = []

    def _caches(self, cache, T: int) -> list:
        """[(keys, values)] of every block from a forward's cache, each holding all T positions."""
        kv = [(k, v) for k, v, *_ in cache] if cache is not None else []
        if len(kv) != len(self.blocks) or any(k is None or k.shape[-2] != T for k, _ in kv):
            raise _Unsupported("the attention cache does not hold every block and position (sliding window?)")
        return kv

    @torch.no_grad()
    def _prefix(self, row: int, P: int) -> tuple[list, torch.Tensor]:
        """The P tokens a family shares, run once (batch 1): every block's (keys, values) and
        block L's output there (1, P, d)."""
        got = {}

        def grab(_m, _i, output):
            got["h"] = hidden_of(output)

        with hooks((self.blocks[self.layer], grab)):
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

        def grab(_m, _i, output):
            got["out"] = output
            got["h"] = hidden_of(output)

        past = None
        if P:
            past = self._Cache(ddp_cache_data=[(k.expand(G, *k.shape[1:]), v.expand(G, *v.shape[1:])) for k, v in prefix[0]], config=self.model.config)
        pos = torch.arange(P, T, device=dev).expand(G, T - P)
        with hooks((self.blocks[L], grab)):
            out = self.base(input_ids=b.ids[idx, P:T], attention_mask=b.mask[idx, :T], position_ids=pos, use_cache=True, **cache_kwargs(self.base, past))
        self._template = got["out"]
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
        """A step group: h_L from its first subject position s0 on, upper K/V before s0."""
        b = self.b
        idx = torch.tensor(rows, dtype=torch.long, device=b.ids.device)
        s0 = min(b.subj[idx].tolist())
        T, G = max(b.lens[r] for r in rows), len(rows)
        kv = [(K[idx, :, :s0].clone(), V[idx, :, :s0].clone()) for K, V in self._KV] if s0 > 0 else []
        pos = torch.arange(s0, T, device=idx.device).expand(G, T - s0)
        return _Group(idx, s0, b.ids[idx, s0:T], b.mask[idx, :T], pos, self._H[idx, s0:T].clone(), kv, b.subj[idx] - s0, b.owner[idx], None, None)

    def _give(self, i: int):
        def give(hidden):
            return replace_hidden(self._template, self._current if i == self.layer else hidden)

        return give

    @contextmanager
    def ready(self) -> Iterator[None]:
        """Inside the block, blocks 0..L are stand-ins and the top block's MLP runs at the read
        points only (all restored in `finally`)."""
        arch = architecture_of(self.model)
        top = len(self.blocks) - 1
        stand_ins = {f"{arch.blocks}.{i}": StandIn(self.blocks[i], self._give(i)) for i in range(self.layer + 1)}
        if top > self.layer:
            mlp = arch.mlp.format(top)
            stand_ins[mlp] = _AtReads(self.model.get_submodule(mlp), lambda: self._reads)
        try:
            with swapped(self.model, stand_ins):
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


def _pass(model, layer: int, b: _RowBatch, cfg: TargetConfig):
    if cfg.path == "fast":
        try:
            return _UpperPass(model, layer, b)
        except _Unsupported as e:
            log.warning("targets: fast path unavailable for this model (%s); using the full forward", e)
    return _FullPass(model, layer, b)


# ---------------------------------------------------------------- the optimisation
@torch.no_grad()
def _mlp_outputs(model, tok, requests, layer: int, fact_token: str) -> torch.Tensor:
    """(n, d) float32 block `layer`'s MLP output at each plain prompt's edit token (ROME's v*
    starting point, what `delta_module="mlp"` measures δ against)."""
    mlp = module(model, architecture_of(model).mlp, layer)
    return read_at(model, tok, locate(tok, requests, ["{}"], fact_token), mlp, read_input=False).float()


def _optimise(model, tok, requests, layer, templates, cfg: TargetConfig) -> Targets:
    dev = device_of(model)
    n = len(requests)
    rows = _rows(tok, requests, templates, cfg.kl_prompt, cfg.fact_token)
    _check_length(model, rows, requests)
    b = _batch(tok, rows, n, dev)
    n_tok = b.y.shape[0]
    tok_owner = b.owner[b.read_b[:n_tok]]
    head = model.get_output_embeddings()
    d = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
    delta = torch.zeros(n, d, device=dev, dtype=torch.float32, requires_grad=True)
    run = _pass(model, layer, b, cfg)
    mlp_ref = _mlp_outputs(model, tok, requests, layer, cfg.fact_token).to(dev) if cfg.delta_module == "mlp" else None  # (n, d)
    state: dict = {}
    # MPES checks the rows with a context prefix (ENCORE's compute_z skips the plain prompt's row),
    # or every row of a request that has no prefixed one
    plain = torch.zeros(b.ids.shape[0], dtype=torch.bool, device=dev)
    plain[b.plain_row] = True
    checked = ~plain[b.read_b[:n_tok]]
    has_checked = torch.zeros(n, device=dev).index_add(0, tok_owner, checked.float()) > 0
    checked |= ~has_checked[tok_owner]
    hits = torch.zeros(n, dtype=torch.long, device=dev)

    def losses():
        hid = run(delta)  # (P, d); the first call sets run.h0
        if "h_norm" not in state:  # (n,) ‖h‖ for the clamp and the weight decay
            state["h_norm"] = (run.h0 if mlp_ref is None else mlp_ref).norm(dim=-1)
        logp = head(hid).float().log_softmax(-1)  # (P, vocab)
        tl = logp[torch.arange(n_tok, device=dev), b.y]  # (n_tok,)
        nll = torch.zeros(n, device=dev).index_add(0, tok_owner, -tl * b.weight)
        kl_logp = logp[n_tok:]  # (n, vocab)
        if "kl0" not in state:
            state["kl0"] = kl_logp.detach()
        kl = (kl_logp.exp() * (kl_logp - state["kl0"])).sum(-1)
        wd = delta.float().norm(dim=-1) / state["h_norm"].pow(2)
        state["nll"] = nll.detach()
        state.setdefault("nll0", nll.detach())
        if cfg.mpes_hits:  # MPES: is target_new the top-1 token at every checked target position?
            miss = (logp[:n_tok].argmax(-1) != b.y) & checked
            state["top1"] = torch.zeros(n, device=dev).index_add(0, tok_owner, miss.float()) == 0
        return nll + cfg.kl_factor * kl + cfg.weight_decay * wd

    # Adam, element-wise, with a per-request active mask (finished requests stop moving)
    m = torch.zeros_like(delta)
    v = torch.zeros_like(delta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    active = torch.ones(n, dtype=torch.bool, device=dev)
    taken = torch.zeros(n, dtype=torch.long)
    with run.ready():
        for it in range(cfg.steps):
            loss = losses()
            last_loss = loss.detach()
            active &= last_loss >= cfg.early_stop
            if cfg.mpes_hits:  # counted over iterations, not necessarily consecutive (as ENCORE's counter)
                hits += (state["top1"] & active).long()
                active &= hits < cfg.mpes_hits
            if it == cfg.steps - 1 or not active.any():
                break
            delta.grad = None
            (loss * active).sum().backward()
            with torch.no_grad():
                g = delta.grad
                t = it + 1
                m.mul_(b1).add_((1 - b1) * g)
                v.mul_(b2).add_((1 - b2) * g * g)
                step = cfg.lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
                delta.sub_(step * active[:, None])
                cap = cfg.clamp_factor * state["h_norm"]  # ‖δ‖ ≤ clamp_factor · ‖h‖
                norm = delta.norm(dim=-1)
                delta.mul_(torch.where(norm > cap, cap / norm, torch.ones_like(norm))[:, None])
            taken += active.cpu().long()
    log.debug("targets: final losses %s", last_loss.tolist())
    H = run.h0.to(torch.float64).cpu().T  # (d, n)
    Z = H + delta.detach().to(torch.float64).cpu().T
    return Targets(Z, H, last_loss.cpu(), taken, state["nll0"].cpu(), state["nll"].cpu())
