"""Target values: the residual-stream vector each request should produce at the last edited layer.

For request i, δ_i (d,) is added to the output of block L at the subject's last token in every
one of its sequences, and optimised with Adam:

    loss_i = mean_c NLL(target_new | context_c + prompt_i)                       (mean per token)
           + kl_factor · KL(p_δ ‖ p_0) of the next token after "{subject} is a"
           + weight_decay · ‖δ_i‖² / ‖h_i‖²
    after each step ‖δ_i‖ ≤ clamp_factor · ‖h_i‖;  request i stops once loss_i < early_stop
    target z_i = h_i + δ_i      (d,)     h_i: block L output at the subject's last token, plain prompt

All requests of a batch are optimised together: one padded forward/backward per step for the
whole batch. The losses are separable and Adam acts element-wise, so this gives the same δ as
optimising each request alone (`serial=True`, the reference behaviour, kept for comparison).
Logits are computed only where the loss reads them (target tokens, the KL position).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .architectures import architecture_of, module
from .config import TargetConfig
from .hooks import hidden_of, hooks, replace_hidden
from .keys import device_of
from .requests import EditRequest
from .tokens import locate_subject, target_ids

log = logging.getLogger(__name__)


@dataclass
class Targets:
    Z: torch.Tensor  # (d, n) float64 target hidden states at the output of block L
    H: torch.Tensor  # (d, n) float64 hidden states before the edit
    losses: torch.Tensor  # (n,) final loss of each request
    steps: torch.Tensor  # (n,) Adam steps each request took


@dataclass
class _Rows:
    ids: list[list[int]]  # token ids of every row
    subj: list[int]  # where δ is added
    owner: list[int]  # request of each row
    tgt_pos: list[list[int]]  # positions whose logits predict target tokens (rewrite rows)
    tgt_ids: list[list[int]]
    kl_row: list[int]  # per request: its KL row
    plain_row: list[int]  # per request: its row without context prefix


def _rows(tok, requests: list[EditRequest], templates: list[str], kl_prompt: str) -> _Rows:
    r = _Rows([], [], [], [], [], [], [])
    for i, req in enumerate(requests):
        t_ids = target_ids(tok, req.target_new)
        for c, ctx in enumerate(templates):
            text, _, last = locate_subject(tok, ctx.replace("{}", req.prompt, 1), req.subject)
            p_ids = tok(text)["input_ids"]
            if c == 0:
                r.plain_row.append(len(r.ids))
            r.ids.append(p_ids + t_ids[:-1])
            r.subj.append(last)
            r.owner.append(i)
            r.tgt_pos.append(list(range(len(p_ids) - 1, len(p_ids) - 1 + len(t_ids))))
            r.tgt_ids.append(t_ids)
        text, _, last = locate_subject(tok, kl_prompt, req.subject)
        r.kl_row.append(len(r.ids))
        r.ids.append(tok(text)["input_ids"])
        r.subj.append(last)
        r.owner.append(i)
        r.tgt_pos.append([])
        r.tgt_ids.append([])
    return r


@contextmanager
def frozen(model):
    """Parameters need no gradient and dropout is off while δ is optimised; restored after."""
    flags = [p.requires_grad for p in model.parameters()]
    training = model.training
    try:
        model.requires_grad_(False)
        model.eval()
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(training)


def compute_targets(model, tok, requests: list[EditRequest], layer: int, templates: list[str], cfg: TargetConfig, *, chunk: int = 64, progress: bool = True) -> Targets:
    """Targets for all requests at the output of block `layer` (batched, or serial if cfg.serial)."""
    size = 1 if cfg.serial else chunk
    parts = []
    bar = tqdm(total=len(requests), desc="targets", disable=not progress, leave=False)
    with frozen(model):
        for s in range(0, len(requests), size):
            parts.append(_optimise(model, tok, requests[s : s + size], layer, templates, cfg))
            bar.update(len(requests[s : s + size]))
    bar.close()
    return Targets(*(torch.cat([getattr(p, f) for p in parts], dim=-1) for f in ("Z", "H", "losses", "steps")))


def _optimise(model, tok, requests, layer, templates, cfg: TargetConfig) -> Targets:
    dev = device_of(model)
    rows = _rows(tok, requests, templates, cfg.kl_prompt)
    n, B = len(requests), len(rows.ids)
    T = max(len(x) for x in rows.ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, x in enumerate(rows.ids):
        ids[b, : len(x)] = torch.tensor(x)
        mask[b, : len(x)] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    brow = torch.arange(B, device=dev)
    subj = torch.tensor(rows.subj, device=dev)
    owner = torch.tensor(rows.owner, device=dev)
    # positions whose logits the loss reads: every target token, and the last token of KL rows
    read_b, read_t, read_y = [], [], []
    for b in range(B):
        read_b += [b] * len(rows.tgt_pos[b])
        read_t += rows.tgt_pos[b]
        read_y += rows.tgt_ids[b]
    kl_rows = torch.tensor(rows.kl_row, device=dev)
    kl_pos = mask[kl_rows].sum(1) - 1
    read_b, read_t, read_y = (torch.tensor(v, device=dev, dtype=torch.long) for v in (read_b, read_t, read_y))
    tok_owner = owner[read_b]
    # NLL normalisation: mean over tokens within a row, then mean over the request's rows
    row_len = torch.tensor([max(len(t), 1) for t in rows.tgt_ids], device=dev, dtype=torch.float32)
    rows_per_req = torch.bincount(owner[read_b.unique()], minlength=n).float()
    tok_weight = 1.0 / (row_len[read_b] * rows_per_req[tok_owner])

    arch = architecture_of(model)
    block = module(model, arch.blocks)[layer]
    base, head = model.base_model, model.get_output_embeddings()
    d = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
    delta = torch.zeros(n, d, device=dev, dtype=torch.float32, requires_grad=True)
    state: dict = {}

    def add_delta(_m, _i, output):
        h = hidden_of(output)
        if "h0" not in state:
            state["h0"] = h[brow, subj].detach().float()  # (B, d) before any δ
        new = h.index_put((brow, subj), delta[owner].to(h.dtype), accumulate=True)
        return replace_hidden(output, new)

    def losses():
        with hooks((block, add_delta)):
            hid = base(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, d)
        tl = head(hid[read_b, read_t]).float().log_softmax(-1)  # (n_tok, vocab)
        nll = torch.zeros(n, device=dev).index_add(0, tok_owner, -tl[torch.arange(len(read_y), device=dev), read_y] * tok_weight)
        kl_logp = head(hid[kl_rows, kl_pos]).float().log_softmax(-1)  # (n, vocab)
        if "kl0" not in state:
            state["kl0"] = kl_logp.detach()
        kl = (kl_logp.exp() * (kl_logp - state["kl0"])).sum(-1)
        h_norm = state["h0"][rows.plain_row].norm(dim=-1)
        wd = delta.float().pow(2).sum(-1) / h_norm.pow(2)
        return nll + cfg.kl_factor * kl + cfg.weight_decay * wd, nll, h_norm

    # Adam, element-wise, with a per-request active mask (finished requests stop moving)
    m = torch.zeros_like(delta)
    v = torch.zeros_like(delta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    active = torch.ones(n, dtype=torch.bool, device=dev)
    taken = torch.zeros(n, dtype=torch.long)
    for it in range(cfg.steps):
        loss, nll, h_norm = losses()
        last_loss = loss.detach()
        active &= last_loss >= cfg.early_stop
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
            cap = cfg.clamp_factor * h_norm  # ‖δ‖ ≤ clamp_factor · ‖h‖
            norm = delta.norm(dim=-1)
            delta.mul_(torch.where(norm > cap, cap / norm, torch.ones_like(norm))[:, None])
        taken += active.cpu().long()
    log.debug("targets: final losses %s", last_loss.tolist())
    H = state["h0"][rows.plain_row].to(torch.float64).cpu().T  # (d, n)
    Z = H + delta.detach().to(torch.float64).cpu().T
    return Targets(Z, H, last_loss.cpu(), taken)
