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

How a step runs the model (`TargetConfig.path`; both give the same δ up to float rounding; the
passes live in forward.py, the engine keys share):

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
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .architectures import architecture_of, context_length, device_of, module
from .config import TargetConfig
from .context import flatten
from .forward import StepBatch, read_at, step_pass
from .hooks import frozen
from .keys import locate
from .requests import EditRequest
from .tokens import edit_position, pad_id, pad_rows, target_ids

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
class TargetRows:
    ids: list[list[int]]  # token ids of every row
    subj: list[int]  # where δ is added
    owner: list[int]  # request of each row
    tgt_pos: list[list[int]]  # positions whose logits predict target tokens (rewrite rows)
    tgt_ids: list[list[int]]
    kl_row: list[int]  # per request: its KL row
    plain_row: list[int]  # per request: its row without context prefix
    kl_pos: list[int]  # per request: where its KL row is read (its edit token)


def target_rows(tok, requests: list[EditRequest], templates, kl_prompt: str, fact_token: str = "subject_last") -> TargetRows:
    """Rows of every request under every template (groups flattened; the first must be "{}"),
    then its KL row."""
    templates, _ = flatten(templates)
    if templates[0] != "{}":
        raise ValueError(f"the first context template must be the plain prompt '{{}}', got {templates[0]!r}")
    r = TargetRows([], [], [], [], [], [], [], [])
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
class _LossBatch(StepBatch):
    """All rows of a chunk, right-padded (`at`: where δ is added), and the P points whose logits the
    loss reads: first every target token (n_tok of them), then the edit token of each request's
    KL row (n)."""

    y: torch.Tensor  # (n_tok,) target token read at each of the first n_tok points
    weight: torch.Tensor  # (n_tok,) NLL weight: 1 / (tokens in the row · rows of the request)


def _check_length(model, rows: TargetRows, requests) -> None:
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


def _batch(tok, rows: TargetRows, n: int, dev) -> _LossBatch:
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
    return _LossBatch(
        ids.to(dev), mask.to(dev), [len(x) for x in rows.ids], as_long(rows.subj), owner.to(dev),
        as_long(rows.plain_row), as_long(read_b), as_long(read_t), as_long(y), weight.to(dev),
    )


# ---------------------------------------------------------------- the optimisation
@torch.no_grad()
def _mlp_outputs(model, tok, requests, layer: int, fact_token: str) -> torch.Tensor:
    """(n, d) float32 block `layer`'s MLP output at each plain prompt's edit token (ROME's v*
    starting point, what `delta_module="mlp"` measures δ against)."""
    mlp = module(model, architecture_of(model).mlp, layer)
    plain = locate(tok, requests, ["{}"], fact_token)
    return read_at(model, tok, plain.texts, plain.index, mlp, read_input=False).float()


def _optimise(model, tok, requests, layer, templates, cfg: TargetConfig) -> Targets:
    dev = device_of(model)
    n = len(requests)
    rows = target_rows(tok, requests, templates, cfg.kl_prompt, cfg.fact_token)
    _check_length(model, rows, requests)
    b = _batch(tok, rows, n, dev)
    n_tok = b.y.shape[0]
    tok_owner = b.owner[b.read_b[:n_tok]]
    head = model.get_output_embeddings()
    d = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
    delta = torch.zeros(n, d, device=dev, dtype=torch.float32, requires_grad=True)
    run = step_pass(model, layer, b, cfg.path)
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
