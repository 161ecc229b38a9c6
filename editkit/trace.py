"""Causal tracing: where does a model recall a fact? (Meng et al. 2022, ROME §2)

A fact is a prompt x = (x_0 … x_{T-1}) containing a subject s at token positions f..ℓ (first and
last subject token, inclusive) and an object o; we score o's first token at the last position.
L = number of blocks, d = d_model, S = noise samples.

    clean       h⁰_t = e(x_t)                      h^l = block_l(h^{l-1}),  l = 0..L-1
                P  = P(o | x)                                                    "high"
    corrupted   h*⁰_t = e(x_t) + ε_t  for t ∈ [f, ℓ],   ε_t ~ N(0, ν² I_d),  ν = noise · std(W_E)
                P* = P*(o | x)                                                   "low"
    restored    the corrupted run, with the clean value put back at one position t:
                  hidden   h*^l_t ← h^l_t                  (output of block l)
                  mlp      m*^j_t ← m^j_t  for j ∈ W(l)     (MLP output of block j)
                  attn     a*^j_t ← a^j_t  for j ∈ W(l)     (attention output of block j)
                W(l) = [l − ⌊w/2⌋, l − ⌊w/2⌋ + w) ∩ [0, L),  w = window (10 in ROME)
                score(t, l) = P*_restored(o | x)
    indirect effect   IE(t, l) = score(t, l) − P*          total effect  TE = P − P*

Every P* is the mean over the S seeded noise samples of the probability (not of the log-prob).
std(W_E) is the standard deviation of all entries of the token-embedding matrix W_E: (V, d).
(ROME used the std of the subject tokens' embeddings over its data set instead.)

How it runs (forward hooks only, installed by `editkit.hooks.hooks`, removed in its `finally`):

    pass 1   ids (1+S, T): row 0 clean, rows 1..S corrupted (embedding hook adds ε: (S, ℓ-f+1, d))
             → P (row 0), P* (mean of rows 1..S), and the clean outputs of every block, MLP and
               attention module, each (T, d) from row 0
    pass 2+  C (t, l) configurations × S samples per forward, row c·S + s = configuration c under
             noise sample s; a hook on module j overwrites the rows of the configurations that
             restore j, at their position t, with the cached clean (d,) vector. Configurations
             that first restore the same layer j0 share one pass; it starts with ids (S, T) (below
             j0 they are all the plain corrupted run) and a hook repeats the batch to (C·S, T, d)
             at the output of block j0 (hidden) or j0 − 1 (mlp/attn). Models that reject a batch
             growing mid-forward (eager attention builds a per-row mask) run (C·S, T) throughout.

Block and attention modules may return tuples; only the hidden-state element [0] is read or
replaced. Positions before the subject are never touched by the noise (causal attention), so
restoring them changes nothing: their scores are P* by construction and are not run (nor are the
last block's outputs at positions other than the last, which nothing downstream reads).
Only the last position's logits are computed (`logits_to_keep=1`) when the model supports it.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .architectures import Architecture, architecture_of, module, num_layers
from .hooks import Hook, eval_mode, hidden_of, hooks, replace_hidden
from .report import require_matplotlib
from .tokens import locate_subject, target_ids, template_of

log = logging.getLogger(__name__)

KINDS = ("hidden", "mlp", "attn")
CATEGORIES = (
    "first subject token",
    "middle subject tokens",
    "last subject token",
    "first subsequent token",
    "further tokens",
    "last token",
)
LAST_SUBJECT = CATEGORIES.index("last subject token")


# ---------------------------------------------------------------------------------------------
# module paths


def _at(model: nn.Module, fns: Mapping[str, Hook]) -> list[tuple[nn.Module, Hook]]:
    """(module, hook) pairs for `editkit.hooks.hooks` from {module path: hook}."""
    return [(model.get_submodule(path), fn) for path, fn in fns.items()]


def _path(arch: Architecture, kind: str) -> str:
    """Module path template (with "{}" for the layer) whose output a `kind` trace restores."""
    return {"hidden": arch.blocks + ".{}", "mlp": arch.mlp, "attn": arch.attn}[kind]


def default_window(n_layers: int) -> int:
    """ROME's window of 10 on GPT-2 XL's 48 layers, scaled: round(L/5) in 1 … 10 (a window of 10
    on a 4-layer model would restore every layer and give a flat map)."""
    return max(1, min(10, round(n_layers / 5)))


def window_layers(layer: int, window: int, n_layers: int) -> range:
    """W(l) = [l − ⌊w/2⌋, l − ⌊w/2⌋ + w) clipped to [0, n_layers)."""
    lo = layer - window // 2
    return range(max(0, lo), min(n_layers, lo + window))


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class TraceResult:
    """One fact, one kind. scores[t, l] = P*(o) with position t restored at layer l (or at the
    window W(l) for mlp/attn)."""

    kind: str
    scores: torch.Tensor  # (T, L) float32 probabilities
    low: float  # P*: corrupted, nothing restored
    high: float  # P: clean
    subject: tuple[int, int]  # first, last subject token (inclusive)
    tokens: list[str]  # the T token strings
    prompt: str  # the filled prompt
    target: str  # the object as given (its token string when given as a token id)
    target_id: int  # the scored token (first token of the target)
    window: int  # layers restored per cell: 1 for "hidden"
    samples: int
    noise: float  # the multiplier of std(W_E)

    @property
    def effect(self) -> torch.Tensor:
        """Indirect effect IE = score − low: (T, L)."""
        return self.scores - self.low

    @property
    def subject_range(self) -> range:
        return range(self.subject[0], self.subject[1] + 1)


@dataclass
class TraceSummary:
    """Many facts: mean indirect effect per token category (rows: CATEGORIES) and layer."""

    effects: dict[str, torch.Tensor]  # kind -> (6, L) mean of (score − low); NaN where no fact
    counts: torch.Tensor  # (6,) number of facts that have a token in each category
    low: float  # mean P* over facts
    high: float  # mean P over facts
    facts: list[dict]  # the facts traced: {"template", "subject", "target", "prompt"}
    skipped: list[dict] = field(default_factory=list)  # facts dropped by only_known
    window: int = 10
    samples: int = 10
    noise: float = 3.0
    categories: tuple[str, ...] = CATEGORIES


def token_categories(first: int, last: int, n_tokens: int) -> list[list[int]]:
    """Positions of each of ROME's six categories for a subject at [first, last] in T tokens.

    A one-token subject is both the first and the last subject token; middle tokens exist only
    for subjects of 3+ tokens; when the subject is followed by one token only, that token is the
    last token (not a "first subsequent" one). Tokens before the subject belong to no category.
    """
    T = n_tokens
    return [
        [first],
        list(range(first + 1, last)),
        [last],
        [last + 1] if last + 1 < T - 1 else [],
        list(range(last + 2, T - 1)),
        [T - 1] if T - 1 > last else [],
    ]


# ---------------------------------------------------------------------------------------------
# the tracer: one fact, its clean pass cached, restorations on demand


def _supports_logits_to_keep(model: nn.Module) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


class _Tracer:
    """Clean/corrupted pass for one fact; `restored()` runs batches of restorations."""

    def __init__(self, model, tok, template, subject, target, *, samples, noise, seed, batch_size):
        if samples < 1:
            raise ValueError(f"samples={samples}: need at least one noise sample.")
        if noise < 0:
            raise ValueError(f"noise={noise}: the noise multiplier must be >= 0.")
        self.model, self.arch = model, architecture_of(model)
        self.n_layers = num_layers(model)
        self.samples, self.noise, self.batch_size = samples, noise, max(batch_size, samples)
        self.text, self.first, self.last = locate_subject(tok, template, subject)
        self.target_id = target if isinstance(target, int) else target_ids(tok, target)[0]
        self.target = target if isinstance(target, str) else tok.decode([target])
        device = next(model.parameters()).device
        self.ids = torch.tensor([tok(self.text)["input_ids"]], device=device)  # (1, T)
        self.T = self.ids.shape[1]
        self.tokens = [tok.decode([i], clean_up_tokenization_spaces=False) for i in self.ids[0].tolist()]
        self._keep = _supports_logits_to_keep(model)
        self._grow = self._batch_can_grow()  # see restored()

        emb = module(model, self.arch.embed).weight  # W_E: (V, d)
        nu = noise * emb.detach().float().std().item()
        g = torch.Generator().manual_seed(seed)
        n_subj = self.last - self.first + 1
        eps = torch.randn(samples, n_subj, emb.shape[1], generator=g) * nu  # (S, n_subj, d)
        self.eps = eps.to(device=device, dtype=emb.dtype)

        # pass 1: row 0 clean, rows 1..S corrupted; cache row 0's outputs of every module
        self.clean: dict[str, list[torch.Tensor | None]] = {k: [None] * self.n_layers for k in KINDS}
        fns: dict[str, Hook] = {self.arch.embed: self._noise_hook(first_row=1)}
        for kind in KINDS:
            for j in range(self.n_layers):
                fns[_path(self.arch, kind).format(j)] = self._cache_hook(kind, j)
        with hooks(*_at(model, fns)):
            p, top = self._probs(1 + samples, with_top=True)
        self.high, self.low = p[0].item(), p[1:].mean().item()
        self.clean_top = int(top[0])

    # hooks ------------------------------------------------------------------------------------
    def _noise_hook(self, first_row: int) -> Hook:
        f, l = self.first, self.last

        def hook(mod, inputs, output):
            h = hidden_of(output).clone()  # (B, T, d)
            reps = (h.shape[0] - first_row) // self.samples
            h[first_row:, f : l + 1] += self.eps.repeat(reps, 1, 1)
            return replace_hidden(output, h)

        return hook

    def _cache_hook(self, kind: str, layer: int) -> Hook:
        def hook(mod, inputs, output):
            self.clean[kind][layer] = hidden_of(output)[0].detach().clone()  # (T, d)

        return hook

    def _patch_hook(self, grow: int, restore: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> Hook:
        """Repeat the batch `grow` times (S → grow·S rows), then put clean values back:
        restore = (values (n, d), rows (n,), positions (n,))."""

        def hook(mod, inputs, output):
            h = hidden_of(output)  # (B, T, d)
            h = h.repeat(grow, 1, 1) if grow > 1 else h.clone()
            if restore is not None:
                values, rows, pos = restore
                h[rows, pos] = values.to(h.dtype)
            return replace_hidden(output, h)

        return hook

    # forward ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _last_logits(self, batch: int) -> torch.Tensor:
        """Next-token logits at the last position for `batch` copies of the prompt: (batch, V)."""
        kw: dict[str, Any] = {"logits_to_keep": 1} if self._keep else {}
        return self.model(input_ids=self.ids.expand(batch, -1), use_cache=False, **kw).logits[:, -1].float()

    def _probs(self, batch: int, with_top: bool = False):
        """P(target) at the last position for `batch` copies of the prompt: (batch,)."""
        logits = self._last_logits(batch)
        p = (logits[:, self.target_id] - logits.logsumexp(-1)).exp()
        return (p, logits.argmax(-1)) if with_top else p

    def restored(self, kind: str, configs: Sequence[Sequence[tuple[int, int]]]) -> torch.Tensor:
        """Mean P*(o) over the noise samples for each configuration, a non-empty set of
        (layer, position) pairs at which `kind`'s clean output is put back: (len(configs),).

        Up to the first restored layer j0 every configuration is the plain corrupted run, so
        configurations are grouped by j0 and each group starts with S rows; the batch grows to
        C·S rows at the output of block j0 ("hidden") or block j0 − 1 (mlp/attn, which restore
        inside block j0). Models whose attention mask is built per batch row (eager attention)
        reject the grown batch (checked once per fact); they run C·S rows from the embedding on.
        """
        S = self.samples
        per = max(1, self.batch_size // S)
        entry = [min(l for l, _ in pairs) - (kind != "hidden") for pairs in configs]
        order = sorted(range(len(configs)), key=entry.__getitem__)
        out = torch.empty(len(configs))
        start = 0
        while start < len(order):
            e = entry[order[start]]
            stop = start
            while stop < len(order) and stop - start < per and entry[order[stop]] == e:
                stop += 1
            idx = order[start:stop]
            out[idx] = self._chunk(kind, [configs[i] for i in idx], e).cpu()
            start = stop
        return out

    def _chunk(self, kind: str, chunk: Sequence[Sequence[tuple[int, int]]], entry: int) -> torch.Tensor:
        """P*(o) for C configurations whose batch grows after block `entry` (−1: from the start)."""
        S, C, dev = self.samples, len(chunk), self.ids.device
        grow = C > 1 and entry >= 0 and self._grow
        rows: dict[int, list[int]] = {}
        pos: dict[int, list[int]] = {}
        for c, pairs in enumerate(chunk):
            for layer, t in pairs:
                rows.setdefault(layer, []).extend(range(c * S, (c + 1) * S))  # row c·S + s
                pos.setdefault(layer, []).extend([t] * S)
        patches: dict[str, tuple[int, Any]] = {}
        if grow:
            patches[self.arch.blocks + f".{entry}"] = (C, None)
        path = _path(self.arch, kind)
        for layer in rows:
            r, p = torch.tensor(rows[layer], device=dev), torch.tensor(pos[layer], device=dev)
            n = patches.get(path.format(layer), (1, None))[0]  # hidden: grow, then restore
            patches[path.format(layer)] = (n, (self.clean[kind][layer][p], r, p))
        fns = {self.arch.embed: self._noise_hook(first_row=0)}
        fns.update({m: self._patch_hook(n, restore) for m, (n, restore) in patches.items()})
        with hooks(*_at(self.model, fns)):
            p = self._probs(S if grow else C * S)
        return p.view(C, S).mean(1)

    @torch.no_grad()
    def _batch_can_grow(self) -> bool:
        """Whether repeating the batch at a block output gives the same logits as running the
        repeated batch from the start (SDPA: yes; eager attention's per-row mask: an error)."""
        try:
            with hooks(*_at(self.model, {self.arch.blocks + ".0": self._patch_hook(2, None)})):
                grown = self._last_logits(2)
        except RuntimeError as err:
            log.debug("batch cannot grow inside the forward pass (%s): full batches", err)
            return False
        full = self._last_logits(4)
        return grown.shape == full.shape and torch.allclose(grown, full, rtol=1e-4, atol=1e-5)

    def result(self, kind: str, window: int) -> TraceResult:
        L, w = self.n_layers, 1 if kind == "hidden" else window
        # Cells that score P* exactly are not run: positions before the subject (never
        # corrupted) and, for "hidden", the last block's output at any position but the last
        # (nothing downstream reads it).
        scores = torch.full((self.T, L), self.low)
        cells = [
            (t, l)
            for t in range(self.first, self.T)
            for l in range(L)
            if not (kind == "hidden" and l == L - 1 and t < self.T - 1)
        ]
        configs = [[(j, t) for j in window_layers(l, w, L)] for t, l in cells]
        for (t, l), s in zip(cells, self.restored(kind, configs).tolist()):
            scores[t, l] = s
        return TraceResult(
            kind=kind,
            scores=scores,
            low=self.low,
            high=self.high,
            subject=(self.first, self.last),
            tokens=self.tokens,
            prompt=self.text,
            target=self.target,
            target_id=self.target_id,
            window=w,
            samples=self.samples,
            noise=self.noise,
        )


def _checked(kinds: Iterable[str], window: int) -> list[str]:
    kinds = list(kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"kinds={kinds!r}: choose from {KINDS}.")
    if window < 1:
        raise ValueError(f"window={window}: restore at least one layer.")
    return kinds


# ---------------------------------------------------------------------------------------------
# public API


def trace_fact_kinds(
    model: nn.Module,
    tok,
    prompt_template: str,
    subject: str,
    target: str | int,
    *,
    kinds: Iterable[str] = KINDS,
    samples: int = 10,
    noise: float = 3.0,
    window: int = 10,
    seed: int = 0,
    batch_size: int = 512,
) -> dict[str, TraceResult]:
    """`trace_fact` for several kinds sharing one clean/corrupted pass: {kind: TraceResult}."""
    kinds = _checked(kinds, window)
    with eval_mode(model):
        tr = _Tracer(model, tok, template_of(prompt_template, subject), subject, target,
                     samples=samples, noise=noise, seed=seed, batch_size=batch_size)
        return {k: tr.result(k, window) for k in kinds}


def trace_fact(
    model: nn.Module,
    tok,
    prompt_template: str,
    subject: str,
    target: str | int,
    *,
    kind: str = "hidden",
    samples: int = 10,
    noise: float = 3.0,
    window: int = 10,
    seed: int = 0,
    batch_size: int = 512,
) -> TraceResult:
    """Causal trace of one fact ("{} is located in the continent of", "Vinson Massif",
    "Antarctica") for one kind of state: "hidden" (block output at one layer), "mlp" or "attn"
    (module output over a window of `window` layers centred on each layer).
    target: the object; the first token of " " + target is scored (`tokens.target_ids`). An int
    is taken as that token's id.

    samples: noise samples averaged; noise: multiplier of std(W_E); batch_size: rows per forward.
    The template may also be the prompt with the subject written out.
    """
    return trace_fact_kinds(model, tok, prompt_template, subject, target, kinds=[kind],
                            samples=samples, noise=noise, window=window, seed=seed,
                            batch_size=batch_size)[kind]


def fact_fields(record: Any) -> tuple[str, str, str]:
    """(template, subject, target) of a fact given as a tuple or as a record of
    known_1000 (prompt, subject, attribute), CounterFact flat (prompt, subject, ground_truth) or
    CounterFact full (requested_rewrite: prompt, subject, target_true.str)."""
    if isinstance(record, (tuple, list)):
        template, subject, target = record
    elif "requested_rewrite" in record:
        rw = record["requested_rewrite"]
        template, subject, target = rw["prompt"], rw["subject"], rw["target_true"]["str"]
    else:
        target = next((record[k] for k in ("attribute", "ground_truth", "target") if k in record), None)
        if target is None or "subject" not in record or "prompt" not in record:
            raise ValueError(
                f"cannot read a fact from the record with keys {sorted(record)}: expected "
                "prompt + subject + attribute (known_1000), prompt + subject + ground_truth "
                "(CounterFact flat) or requested_rewrite (CounterFact)."
            )
        template, subject = record["prompt"], record["subject"]
    if isinstance(target, list):  # zsRE-like answer lists
        target = target[0]
    return template_of(template, subject), subject, target if isinstance(target, int) else str(target)


def load_facts(source: str | Path, n: int | None = None) -> list[dict]:
    """The first n records of a JSON / JSON-lines file, a URL or a short name of
    `editkit.evaluation.datasets` ("knowns", "counterfact:val", …)."""
    from .evaluation.datasets import read_records, resolve_source

    records = read_records(resolve_source(str(source))[1])
    return records[:n] if n is not None else records


def trace_facts(
    model: nn.Module,
    tok,
    facts: Iterable[Any],
    *,
    kinds: Iterable[str] = KINDS,
    samples: int = 10,
    noise: float = 3.0,
    window: int = 10,
    seed: int = 0,
    only_known: bool = True,
    min_prob: float | None = None,
    batch_size: int = 512,
    progress: bool = True,
    max_known: int | None = None,
) -> TraceSummary:
    """Mean indirect effect over many facts, by token category (CATEGORIES) and layer.

    facts: records accepted by `fact_fields`. Fact i is traced with noise seed `seed + i`.
    only_known: trace only facts the clean model knows: the target's first token is the argmax
    of its next-token prediction (min_prob=None), or has probability >= min_prob. The others are
    listed in `skipped`. With only_known=False every fact is traced. max_known: stop once that
    many facts were traced.
    Per fact the effect (score − low) is averaged over the positions of each category, then
    averaged over the facts that have that category (`counts`).
    """
    kinds = _checked(kinds, window)
    sums: dict[str, torch.Tensor] = {}
    counts = torch.zeros(len(CATEGORIES))
    used, skipped, lows, highs = [], [], [], []
    facts = list(facts)
    with eval_mode(model):
        for i, rec in enumerate(tqdm(facts, desc="causal tracing", disable=not progress)):
            if max_known is not None and len(used) >= max_known:
                break
            template, subject, target = fact_fields(rec)
            tr = _Tracer(model, tok, template, subject, target, samples=samples, noise=noise,
                         seed=seed + i, batch_size=batch_size)
            fact = {"template": template, "subject": subject, "target": target, "prompt": tr.text}
            known = tr.clean_top == tr.target_id if min_prob is None else tr.high >= min_prob
            if only_known and not known:
                skipped.append(fact)
                continue
            cats = token_categories(tr.first, tr.last, tr.T)
            for kind in kinds:
                eff = tr.result(kind, window).effect  # (T, L)
                s = sums.setdefault(kind, torch.zeros(len(CATEGORIES), tr.n_layers))
                for c, positions in enumerate(cats):
                    if positions:
                        s[c] += eff[positions].mean(0)
            counts += torch.tensor([float(bool(p)) for p in cats])
            used.append(fact)
            lows.append(tr.low)
            highs.append(tr.high)
    if not used:
        raise ValueError(
            f"none of the {len(facts)} facts is known to the model (criterion: "
            f"{'target is the argmax' if min_prob is None else f'P(target) >= {min_prob}'}), so "
            "there is nothing to trace. Pass only_known=False (CLI: --all) to trace them anyway, "
            "or lower min_prob."
        )
    log.info("traced %d facts, skipped %d not known to the model", len(used), len(skipped))
    effects = {k: s / counts[:, None] for k, s in sums.items()}  # 0/0 = NaN where no fact
    return TraceSummary(effects=effects, counts=counts, low=sum(lows) / len(lows),
                        high=sum(highs) / len(highs), facts=used, skipped=skipped,
                        window=window, samples=samples, noise=noise)


def _mlp_effect_at_last_subject(result: Any) -> torch.Tensor:
    if isinstance(result, TraceSummary):
        if "mlp" not in result.effects:
            raise ValueError("this summary was traced without kind 'mlp'.")
        return result.effects["mlp"][LAST_SUBJECT]
    if isinstance(result, Mapping):
        result = result.get("mlp")
    if not isinstance(result, TraceResult) or result.kind != "mlp":
        raise ValueError("top_mlp_layers needs an 'mlp' trace: a TraceSummary, an mlp TraceResult "
                         "or a {kind: TraceResult} mapping with an 'mlp' entry.")
    return result.effect[result.subject[1]]


def top_mlp_layers(result: TraceSummary | TraceResult | Mapping[str, TraceResult], k: int = 3) -> list[int]:
    """The k layers whose MLP (window centred there) has the largest indirect effect at the last
    subject token, largest first."""
    eff = _mlp_effect_at_last_subject(result)
    if torch.isnan(eff).any():
        raise ValueError("the MLP effect at the last subject token has NaNs (no fact traced).")
    return eff.topk(min(k, eff.numel())).indices.tolist()


# ---------------------------------------------------------------------------------------------
# plotting

_CMAPS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}
_NAMES = {"hidden": "hidden state (block output)", "mlp": "MLP output", "attn": "attention output"}


def plot_traces(
    result: TraceSummary | Mapping[str, TraceResult] | Iterable[TraceResult], path: str | Path
) -> Path:
    """One PNG with a heat map per kind (x = layer; y = the six categories for a TraceSummary,
    showing the mean indirect effect, or the prompt's tokens for one fact, showing P(target)).
    Subject tokens are marked with '*'. Returns the path."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(result, TraceSummary):
        panels = [(k, result.effects[k]) for k in KINDS if k in result.effects]
        labels = list(result.categories)
        cbar = "mean indirect effect  P*restored − P*"
        title = (f"Causal trace, mean over {len(result.facts)} facts "
                 f"(P clean {result.high:.3g}, P* corrupted {result.low:.3g})")
        window = result.window
    else:
        results = list(result.values()) if isinstance(result, Mapping) else list(result)
        if not results:
            raise ValueError("plot_traces got no trace results.")
        results.sort(key=lambda r: KINDS.index(r.kind))
        r0 = results[0]
        panels = [(r.kind, r.scores) for r in results]
        labels = [tok + ("*" if i in r0.subject_range else "") for i, tok in enumerate(r0.tokens)]
        cbar = f"P({r0.target.strip()!r}) with the state restored"
        title = (f"Causal trace of {r0.prompt!r} → {r0.target!r} "
                 f"(P clean {r0.high:.3g}, P* corrupted {r0.low:.3g})")
        window = next((r.window for r in results if r.kind != "hidden"), 1)

    fig = Figure(figsize=(4.2 * len(panels), 1.2 + 0.32 * len(labels)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (kind, data) in zip(axes, panels):
        im = ax.imshow(data.float().numpy(), aspect="auto", cmap=_CMAPS[kind], interpolation="nearest")
        ax.set_yticks(range(len(labels)), labels=[repr(s)[1:-1] for s in labels], fontsize=8)
        L = data.shape[1]
        ax.set_xticks(range(0, L, max(1, math.ceil(L / 12))))
        ax.set_xlabel("layer" if kind == "hidden" else f"centre of {window} restored layers")
        ax.set_title(_NAMES[kind], fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8).set_label(cbar, fontsize=7)
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------------------------------
# command line


def run(args, model, tok) -> int:
    """`editkit trace` (its flags: editkit.cli): average causal traces over facts, save the heat
    maps, print the top MLP layers at the last subject token."""
    require_matplotlib()  # before the trace: its product is the picture
    if args.window is None:
        args.window = default_window(num_layers(model))
    if args.facts is None:  # the model's own cases when its folder ships them, else CounterFact's val
        from .evaluation.datasets import default_dataset

        args.facts = default_dataset(args.model, "val")
    facts = load_facts(args.facts, args.n)
    summary = trace_facts(model, tok, facts, samples=args.samples, noise=args.noise,
                          window=args.window, seed=args.seed, only_known=not args.all,
                          min_prob=args.min_prob, batch_size=args.batch_size,
                          progress=not args.no_progress)
    plot_traces(summary, args.out)
    layers = top_mlp_layers(summary, args.k)
    eff = summary.effects["mlp"][LAST_SUBJECT]
    print(f"traced {len(summary.facts)} facts ({len(summary.skipped)} skipped as not known); "
          f"heat maps: {args.out}")
    print("top MLP layers (indirect effect at the last subject token): "
          + ", ".join(f"{l} ({eff[l]:+.3g})" for l in layers))
    mlp = summary.effects["mlp"].nan_to_num(float("-inf"))
    row, layer = divmod(int(mlp.argmax()), mlp.shape[1])
    print(f"largest MLP effect anywhere: {CATEGORIES[row]}, layer {layer} ({float(mlp[row, layer]):+.3g})")
    if CATEGORIES[row] == "last token":
        print("this model recalls at the prompt's last token, not at the subject: edit there "
              "(Editor(..., fact_token=\"last\")) at the layers with the largest effect")
    return 0

