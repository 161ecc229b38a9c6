"""Matmul FLOP counts of target optimisation, from the actual rows (GPT-2-like blocks).

Per position, one block costs 24·d² multiply-add FLOPs in its four projections (QKV 6d², out 2d²,
MLP 16d²) plus 4·ctx·d in attention (scores and weighted sum over ctx keys); the head costs 2·d·V.
A backward pass that needs input gradients only (parameters are frozen) costs the same matmul
FLOPs as the forward pass over the positions on δ's gradient path.

  reference: every step, the whole model on the request's padded batch (B × T), the head at
             every position; backward through blocks L+1 … top and the head at every position.
  floor:     once, blocks 0..L at every real position and blocks above L at the positions before
             each row's subject (their keys/values; the top block: K/V projections only);
             each step, blocks L+1 … top−1 at positions ≥ subject, the top block's K/V there and
             its full work at the read points only, the head at the read points only; the same
             again backward.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Shape:
    n_layer: int = 12
    d: int = 768
    vocab: int = 50257

    @property
    def block(self) -> int:  # per position, projections
        return 24 * self.d * self.d

    @property
    def kv(self) -> int:  # per position, K and V projections only
        return 4 * self.d * self.d

    def attn(self, ctx: float) -> float:
        return 4 * ctx * self.d

    @property
    def head(self) -> int:
        return 2 * self.d * self.vocab


def reference(rows, L: int, s: Shape, fwd: int, bwd: int) -> float:
    """FLOPs of the serial reference for one request's rows (padded to the request's longest)."""
    B, T = len(rows.ids), max(len(x) for x in rows.ids)
    per_pos = s.n_layer * (s.block + s.attn(T / 2)) + s.head
    upper = (s.n_layer - 1 - L) * (s.block + s.attn(T / 2)) + s.head
    return fwd * B * T * per_pos + bwd * B * T * upper


def floor(rows, L: int, s: Shape, taken: list[int], shared: list[int] | None = None) -> float:
    """The least matmul work of the exact algorithm for these rows (no padding, no recomputation).

    taken[i]: Adam steps request i took (it ran taken+1 forwards and taken backwards).
    shared[b]: leading positions of row b that are computed once for its whole family of rows
    (editkit's shared context prefixes, `forward.prefix_families`); None = nothing shared. Each
    family's prefix is then counted once: `prefix_cost`."""
    top = s.n_layer - 1
    total = 0.0
    reads = {b: set(p) for b, p in enumerate(rows.tgt_pos)}
    for b in rows.kl_row:
        reads[b] = {len(rows.ids[b]) - 1}
    for b, x in enumerate(rows.ids):
        n, j = len(x), rows.subj[b]
        P = shared[b] if shared else 0
        once = (L + 1) * ((n - P) * s.block + s.attn((n + P) / 2) * (n - P))
        once += (top - L - 1) * (j - P) * (s.block + s.attn((j + P) / 2)) + (j - P) * s.kv
        after = n - j
        step = (top - L - 1) * after * (s.block + s.attn((j + n) / 2))
        step += after * s.kv + len(reads[b]) * (s.block - s.kv + s.attn(n) + s.head)
        k = taken[rows.owner[b]]
        total += once + (2 * k + 1) * step
    return total


def prefix_cost(P: int, s: Shape) -> float:
    """A shared prefix of P tokens, once: every block (the top one: K/V only) at its positions."""
    top = s.n_layer - 1
    return top * P * (s.block + s.attn(P / 2)) + P * s.kv
