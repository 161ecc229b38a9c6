"""The serial reference for target values (the speed benchmarks time editkit against it; the
integration tier checks editkit against it), written the way the official MEMIT code computes them
(`compute_z`): one request at a time, the full model forward every step with δ added by a hook on
block L, full-vocabulary logits at every position, log-softmax over all of them, then the
target tokens gathered; KL at the KL prompt's edit token, weight decay ‖δ‖/‖h‖²;
torch.optim.Adam on δ, clamp after each step, stop once loss < early_stop.

It shares only the row construction (`editkit.targets.target_rows`: tokenisation, subject and target
positions) with editkit, so its losses are an independent check of editkit's fast path.
"""

from __future__ import annotations

import torch

from editkit.architectures import architecture_of, module
from editkit.config import TargetConfig
from editkit.hooks import frozen, hidden_of, hooks, replace_hidden
from editkit.targets import Targets, target_rows


def reference_targets(model, tok, requests, layer: int, templates: list[str], cfg: TargetConfig) -> Targets:
    Z, H, losses, steps = [], [], [], []
    with frozen(model):
        for req in requests:
            z, h, loss, k = _one(model, tok, req, layer, templates, cfg)
            Z.append(z), H.append(h), losses.append(loss), steps.append(k)
    return Targets(torch.stack(Z, 1), torch.stack(H, 1), torch.tensor(losses), torch.tensor(steps))


def _one(model, tok, req, layer, templates, cfg):
    r = target_rows(tok, [req], templates, cfg.kl_prompt, cfg.fact_token)
    B, T = len(r.ids), max(len(x) for x in r.ids)
    pad = tok.eos_token_id
    ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, x in enumerate(r.ids):
        ids[b, : len(x)] = torch.tensor(x)
        mask[b, : len(x)] = 1
    block = module(model, architecture_of(model).blocks)[layer]
    delta = torch.zeros(model.get_input_embeddings().embedding_dim, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    state = {}

    def add(_m, _i, out):
        h = hidden_of(out)
        if "h0" not in state:
            state["h0"] = h[r.plain_row[0], r.subj[r.plain_row[0]]].detach().clone()
        h = h.clone()
        for b in range(B):
            h[b, r.subj[b]] += delta
        return replace_hidden(out, h)

    kl0 = None
    taken = 0
    for it in range(cfg.steps):
        opt.zero_grad()
        with hooks((block, add)):
            logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, vocab): every position
        logp = torch.log_softmax(logits, dim=-1)
        nll, rows = 0.0, 0
        for b in range(B):
            if r.tgt_ids[b]:
                pos, y = torch.tensor(r.tgt_pos[b]), torch.tensor(r.tgt_ids[b])
                nll = nll - logp[b, pos, y].mean()
                rows += 1
        nll = nll / rows
        kl_b = r.kl_row[0]
        kl_logp = logp[kl_b, r.kl_pos[0]]
        if kl0 is None:
            kl0 = kl_logp.detach().clone()
        kl = torch.nn.functional.kl_div(kl0, kl_logp, log_target=True, reduction="sum")  # KL(p_δ ‖ p_0)
        h0 = state["h0"]
        wd = delta.norm() / h0.pow(2).sum()
        loss = nll + cfg.kl_factor * kl + cfg.weight_decay * wd
        if loss.item() < cfg.early_stop or it == cfg.steps - 1:
            break
        loss.backward()
        opt.step()
        taken += 1
        with torch.no_grad():
            cap = cfg.clamp_factor * h0.norm()
            if delta.norm() > cap:
                delta.mul_(cap / delta.norm())
    z = (state["h0"] + delta.detach()).double()
    return z, state["h0"].double(), float(loss.detach()), taken
