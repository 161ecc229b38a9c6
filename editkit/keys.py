"""Keys and hidden states read from a real model: the `LayerAccess` a strategy sees.

    key k_i   (d_in,)  input of the MLP output projection at the edit token (the subject's last
                       token unless `fact_token` says otherwise), averaged over the context
                       templates: within each template group, then across groups
                       (memit/compute_ks.py; with one group, the uniform mean of rome/compute_u.py)
    plain key (d_in,)  the same at the plain prompt only (ROME's compute_v divides by it)
    h_i       (d,)     output of a block at the edit token of the plain prompt
    K = [k_1 … k_n]  (d_in, n),   H = [h_1 … h_n]  (d, n),   float64

Reading keys layer after layer (the spread strategy asks for l_1 < l_2 < … with W_{l_j} edited
in between) does not rerun the model from the embeddings each time. The keys at layer l depend
only on the input of block c ≤ l and on blocks c … l, so `ModelAccess` keeps, per batch of
context rows, the input of block c (= output of block c − 1)

    X_c   (Σ_r (i_r + 1 − S_t), d)  row r's positions S_t … i_r (its edit token i_r; later positions
                                    never reach it through causal attention), rows packed, model dtype
    P_c,t (S_t, d)                  positions 0 … S_t − 1, alike in every row of context template t
                                    (its common token prefix, ≤ every i_r), kept once per template

taken while the keys at c were read, and reads the keys at l ≥ c by running the model's own
forward (its masks, position ids, rotary embeddings) with blocks 0 … c − 1 swapped for stand-ins
that hand back P_c,t and X_c. The cache is used only while no parameter outside blocks c … top changed
(ΔW at layer ≥ c leaves it valid; an edit below c, or any other change of those parameters,
detected by their version counters, drops it). For spread over layers 4 … 8 this runs
5 + 4·2 = 13 block passes (the last of each read stops at the key) instead of 5+6+7+8+9 = 35.

Memory bound: at most `cache_bytes` (default 2 GiB) of X_c and P_c (one c per batch; at most one
batch's (B, T, d) hidden states more while it is read); batches beyond it are read by the plain
full forward. GPT-2 small on CounterFact with 10 generated prefixes: ≈ 4.5 own positions per row
(≈ 14 KB in float32), so 2 GiB holds the rows of ≈ 14 000 requests (11 templates each). Only for
the model families tested against the plain path (`CACHED`); others, and a model in training
mode (dropout), always take the plain path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .architectures import add_delta, architecture_of, device_of, module, read_weight
from .context import flatten
from .forward import Batch, BlockReturn, entering, read_at
from .hooks import hooks, stop_after
from .requests import EditRequest
from .tokens import edit_position, encode_batch, shared_prefix


@dataclass
class Located:
    """Texts with the token index where each reads or writes, and the request each belongs to."""

    texts: list[str]
    index: list[int]  # the edit token in each text (TargetConfig.fact_token: the subject's last token by default)
    owner: list[int]  # request index of each text


def locate(tok, requests: list[EditRequest], templates: list[str], fact_token: str = "subject_last") -> Located:
    """Every request under every context template ("<prefix>{}")."""
    texts, index, owner = [], [], []
    for i, r in enumerate(requests):
        for ctx in templates:
            text, at = edit_position(tok, ctx.replace("{}", r.prompt, 1), r.subject, fact_token)
            texts.append(text)
            index.append(at)
            owner.append(i)
    return Located(texts, index, owner)


def average_by_owner(x: torch.Tensor, owner: list[int], n: int, weight: list[float]) -> torch.Tensor:
    """(n, d) weighted mean of the rows of x (m, d) that belong to each owner (the weights of one
    owner's rows sum to 1: editkit.context.flatten's 1 / (G · |g|))."""
    w = torch.tensor(weight, dtype=x.dtype).unsqueeze(1)  # (m, 1)
    return torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, torch.tensor(owner), x * w)


CACHED = {"gpt2", "gptj", "gpt_neox", "llama"}  # families whose cached keys are tested equal to the plain path's


@dataclass
class _KeyBatch(Batch):
    """One batch of context rows, cut after its last edit token (T = max i_r + 1; `at`: i_r), and
    its cached block input: row r's positions S_t … i_r (t: its template); positions < S_t are the
    template's, kept once."""

    tmpl: torch.Tensor  # (B,) template of each row
    share: torch.Tensor  # (B,) S_t of each row's template
    c: int = 0  # X is (part of) the input of block c (0: nothing cached)
    X: torch.Tensor | None = None  # (Σ (i_r + 1 − S_t), d) rows packed
    sign: tuple = field(default_factory=tuple)  # versions of the parameters X depends on

    def _own(self, T: int, device) -> torch.Tensor:
        t = torch.arange(T, device=device)
        return (t >= self.share.to(device).unsqueeze(1)) & (t <= self.at.to(device).unsqueeze(1))  # (B, T)

    def packed(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, d) → (Σ (i_r + 1 − S_t), d)."""
        return h[self._own(h.shape[1], h.device)]

    def unpacked(self, prefix: dict[int, torch.Tensor]) -> torch.Tensor:
        """(B, T, d): the template's prefix, then the row's own positions, zeros after i_r (no read
        ever attends there)."""
        B, T = self.ids.shape
        out = self.X.new_zeros(B, T, self.X.shape[-1])
        out[self._own(T, self.X.device)] = self.X
        for t in self.tmpl.unique().tolist():
            rows = (self.tmpl == t).nonzero().squeeze(1).to(self.X.device)
            P = prefix[t]
            out[rows, : P.shape[0]] = P
        return out


class ModelAccess:
    """`LayerAccess` over a transformers model for a batch of requests."""

    def __init__(self, model, tok, requests: list[EditRequest], templates, batch_size: int = 32, fact_token: str = "subject_last", cache_bytes: int = 2**31):
        """`templates`: template groups (editkit.context), or a flat list (one group)."""
        self.model, self.tok, self.n = model, tok, len(requests)
        self.arch = architecture_of(model)
        self.batch_size = batch_size
        templates, weights = flatten(templates)
        self.with_context = locate(tok, requests, templates, fact_token)
        self._weight = weights * len(requests)  # key-average weight of each context row (locate's order)
        self.plain = locate(tok, requests, ["{}"], fact_token)
        self.cache_bytes = cache_bytes
        self._tmpl = [t for _ in requests for t in range(len(templates))]  # template of each context row (locate's order)
        self._batches: list[_KeyBatch] | None = None  # context rows by batch, made on the first cached read
        self._prefix: dict[int, dict[int, torch.Tensor]] = {}  # c → template → (S_t, d) its rows' shared input of block c
        self._prefix_sign: dict[int, tuple] = {}
        self._kind = BlockReturn()  # what a block returns, for the stand-ins

    def keys(self, layer: int) -> torch.Tensor:
        proj = module(self.model, self.arch.proj, layer)
        if self._cacheable(layer):
            k = self._cached_keys(layer, proj)
        else:
            k = self._read(self.with_context, proj, read_input=True)
        return average_by_owner(k, self.with_context.owner, self.n, self._weight).T  # (d_in, n)

    def plain_keys(self, layer: int) -> torch.Tensor:
        """(d_in, n) keys at the plain prompts (no context prefix)."""
        proj = module(self.model, self.arch.proj, layer)
        return self._read(self.plain, proj, read_input=True).T

    def _read(self, located: Located, target: nn.Module, read_input: bool) -> torch.Tensor:
        return read_at(self.model, self.tok, located.texts, located.index, target, read_input=read_input, batch_size=self.batch_size)

    # ------------------------------------------------------------ keys from cached block inputs
    def _cacheable(self, layer: int) -> bool:
        return self.cache_bytes > 0 and layer > 0 and not self.model.training and self.model.config.model_type in CACHED

    def _sign(self, c: int) -> tuple:
        """Identity and version of every parameter outside blocks c … top (what X_c depends on)."""
        blocks = self.arch.blocks + "."
        above = {f"{blocks}{i}." for i in range(c, len(module(self.model, self.arch.blocks)))}
        return tuple(
            (n, p.data_ptr(), p._version)
            for n, p in self.model.named_parameters()
            if not (n.startswith(blocks) and any(n.startswith(a) for a in above))
        )

    def _make_batches(self) -> list[_KeyBatch]:
        """Batches as `read_at` makes them; S_t = min(longest token prefix common to all rows of
        template t, smallest i_r among them): the positions every row of t has alike."""
        loc, dev = self.with_context, device_of(self.model)
        rows: dict[int, list[list[int]]] = {}
        lowest: dict[int, int] = {}
        parts = []
        for s in range(0, len(loc.texts), self.batch_size):
            ids, mask, lens = encode_batch(self.tok, loc.texts[s : s + self.batch_size], dev)
            index = loc.index[s : s + self.batch_size]
            tmpl = self._tmpl[s : s + self.batch_size]
            for row, (t, n, i) in enumerate(zip(tmpl, lens, index)):
                rows.setdefault(t, []).append(ids[row, :n].tolist())
                lowest[t] = min(lowest.get(t, i), i)
            T = max(index) + 1
            parts.append((ids[:, :T], mask[:, :T], [min(n, T) for n in lens], torch.tensor(index, device=dev), tmpl))
        S = {t: shared_prefix(rows[t], lowest[t]) for t in rows}
        return [
            _KeyBatch(ids, mask, lens, at, torch.tensor(tmpl, device=dev), torch.tensor([S[t] for t in tmpl], device=dev))
            for ids, mask, lens, at, tmpl in parts
        ]

    @staticmethod
    def _bytes(x: torch.Tensor | None) -> int:
        return 0 if x is None else x.numel() * x.element_size()

    @torch.no_grad()
    def _cached_keys(self, layer: int, proj: nn.Module) -> torch.Tensor:
        """(len(texts), d_in) as `read_at(..., proj, read_input=True)`, running blocks c … layer
        from each batch's cached input of block c where it is valid; the input of block `layer`
        becomes the new cache (within `cache_bytes`)."""

        if self._batches is None:
            self._batches = self._make_batches()
        blocks = module(self.model, self.arch.blocks)
        signs: dict[int, tuple] = {}

        def sign(c: int) -> tuple:
            if c not in signs:
                signs[c] = self._sign(c)
            return signs[c]

        for b in self._batches:  # drop what an edit below its block (or any change there) made stale
            if b.X is not None and (b.c > layer or b.sign != sign(b.c)):
                b.X, b.c, b.sign = None, 0, ()
        live = {b.c for b in self._batches if b.X is not None}
        self._prefix = {c: p for c, p in self._prefix.items() if c in live and self._prefix_sign[c] == sign(c)}
        used = sum(self._bytes(b.X) for b in self._batches) + sum(self._bytes(x) for p in self._prefix.values() for x in p.values())
        out = []
        for b in self._batches:
            c = b.c if b.X is not None else 0
            got = {}

            def grab_key(_m, inputs, _o):
                got["k"] = inputs[0][torch.arange(inputs[0].shape[0], device=inputs[0].device), b.at]

            X = (lambda b=b, c=c: b.unpacked(self._prefix[c])) if c else None  # block c's input
            below = blocks[layer - 1]
            with entering(self.model, c, X, self._kind), hooks((proj, grab_key), (below, self._kind.grab(got, "x"))), stop_after(proj):
                self.model(input_ids=b.ids, attention_mask=b.mask, use_cache=False)
            out.append(got["k"].to(torch.float64).cpu())
            if c < layer:  # the input of block `layer` replaces the older cache, if it fits
                h = got["x"]  # (B, T, d)
                mine = self._prefix.setdefault(layer, {})
                self._prefix_sign[layer] = sign(layer)
                new = {}
                for t in b.tmpl.unique().tolist():
                    if t not in mine:
                        r = int((b.tmpl == t).nonzero()[0])
                        new[t] = h[r, : int(b.share[r])].clone()
                X = b.packed(h)
                grow = self._bytes(X) - self._bytes(b.X) + sum(self._bytes(x) for x in new.values())
                if used + grow <= self.cache_bytes:
                    mine.update(new)
                    b.X, b.c, b.sign, used = X, layer, sign(layer), used + grow
        live = {b.c for b in self._batches if b.X is not None}
        self._prefix = {c: p for c, p in self._prefix.items() if c in live}
        return torch.cat(out)

    def outputs(self, layer: int) -> torch.Tensor:
        block = module(self.model, self.arch.blocks)[layer]
        return self._read(self.plain, block, read_input=False).T

    def weight(self, layer: int) -> torch.Tensor:
        return read_weight(self.model, layer).detach().to(torch.float64).cpu()

    def add(self, layer: int, delta: torch.Tensor) -> None:
        add_delta(self.model, layer, delta)
        for b in self._batches or []:  # X_c with c > layer passed through the old W (also caught by the versions)
            if b.c > layer:
                b.X, b.c, b.sign = None, 0, ()
        self._prefix = {c: p for c, p in self._prefix.items() if c <= layer}
