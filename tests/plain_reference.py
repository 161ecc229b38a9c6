"""A plain, slow reimplementation of the published algorithms' definitions, written from the
equations and the papers' conventions (benchmarks/faithfulness/README.md lists them), to check
editkit's fast paths against. It shares no code with editkit: one text per forward, module
paths from its own small table, the subject index by the papers' rule (token lengths of the
prefix, the subject and the suffix, tokenised apart), torch.optim.Adam, explicit inverses.

Shapes: K (d_in, n), R and Z (d, n), C0 (d_in, d_in), ΔW (d_out, d_in), all float64.

    key (MEMIT/EMMET/AlphaEdit)  k = mean over groups of (mean over the group's templates of k_t)
    key (ROME)                   one group: the plain mean over all templates
    δ                            added to the block output (MEMIT) or the MLP output (ROME) of
                                 layer L at the subject's last token of every prompt, the KL
                                 prompt "{} is a" included
    loss                         mean_t NLL(target | t(prompt) + target[:-1]) / len(target)
                                 + kl · KL(p_δ ‖ p_0) at the KL prompt's subject token
                                 + wd · ‖δ‖ / ‖h0‖²;   ‖δ‖ ≤ clamp · ‖h0‖ after each step
    MEMIT      ΔW = R Kᵀ (λ C0 + K Kᵀ)⁻¹,   R = (Z − H_L) / (#layers − i) at layer i
    EMMET      ΔW = R (D + α I)⁻¹ Kᵀ C⁻¹,  C = λ C0, D = Kᵀ C⁻¹ K, α only when n > 1
    AlphaEdit  ΔWᵀ = (P (K Kᵀ + Kp Kpᵀ) + β I)⁻¹ P K Rᵀ,  P from the eigenvectors of C0 with
               eigenvalue < threshold;  Kp Kpᵀ += K Kᵀ of each batch after it is written
    ROME       u = C0⁻¹ k̄,  ΔW = (v* − v) uᵀ / (k · u),  k: the plain prompt's key ("plain")
               or k̄ ("average"), v = W k + b at the plain prompt, v* = MLP output + δ
"""

from __future__ import annotations

import torch

PATHS = {  # family: (blocks, mlp, output projection, weight stored (d_in, d_out)?)
    "gpt2": ("transformer.h", "mlp", "mlp.c_proj", True),
    "gptj": ("transformer.h", "mlp", "mlp.fc_out", False),
    "gpt_neox": ("gpt_neox.layers", "mlp", "mlp.dense_4h_to_h", False),
    "llama": ("model.layers", "mlp", "mlp.down_proj", False),
}


def block(model, i):
    return model.get_submodule(PATHS[model.config.model_type][0])[i]


def mlp(model, i):
    return block(model, i).get_submodule(PATHS[model.config.model_type][1])


def proj(model, i):
    return block(model, i).get_submodule(PATHS[model.config.model_type][2])


def subject_last(tok, template: str, subject: str) -> int:
    """The papers' rule: prefix (its trailing space moved onto the subject) + subject token counts − 1."""
    prefix = template[: template.index("{}")]
    word = subject
    if prefix:
        assert prefix.endswith(" "), template
        prefix, word = prefix[:-1], " " + subject.strip()
    return len(tok(prefix)["input_ids"]) + len(tok(word)["input_ids"]) - 1


def _grab(module, text_ids, idx, model, inputs: bool):
    got = {}

    def hook(_m, i, o):
        x = i[0] if inputs else (o[0] if isinstance(o, tuple) else o)
        got["x"] = x[0, idx].detach().double()

    h = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([text_ids]))
    finally:
        h.remove()
    return got["x"]


def key(model, tok, req, layer, groups) -> torch.Tensor:
    """(d_in,) the grouped key average."""
    means = []
    for g in groups:
        ks = []
        for t in g:
            tmpl = t.replace("{}", req["prompt"])
            text = tmpl.replace("{}", req["subject"])
            ks.append(_grab(proj(model, layer), tok(text)["input_ids"], subject_last(tok, tmpl, req["subject"]), model, True))
        means.append(torch.stack(ks).mean(0))
    return torch.stack(means).mean(0)


def at_plain(model, tok, req, module, inputs: bool) -> torch.Tensor:
    text = req["prompt"].replace("{}", req["subject"])
    return _grab(module, tok(text)["input_ids"], subject_last(tok, req["prompt"], req["subject"]), model, inputs)


def target(model, tok, req, layer, groups, steps, lr, clamp, wd, kl_factor, at="block", mpes=0, taken=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(h0 + δ, h0): h0 the block (or MLP) output of `layer` at the plain prompt's subject.
    mpes = k > 0: ENCORE's most-probable early stopping, counted on the rows after the first
    (the plain prompt's); `taken` (a list) receives the number of Adam steps made."""
    t_ids = tok(" " + req["target_new"].lstrip())["input_ids"]
    prompts = [t.replace("{}", req["prompt"]) + tok.decode(t_ids[:-1]) for g in groups for t in g] + ["{} is a"]
    rows = [tok(p.replace("{}", req["subject"]))["input_ids"] for p in prompts]
    idxs = [subject_last(tok, p, req["subject"]) for p in prompts]
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), tok.eos_token_id)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for r, x in enumerate(rows):
        ids[r, : len(x)], mask[r, : len(x)] = torch.tensor(x), 1
    where = block(model, layer) if at == "block" else mlp(model, layer)
    d = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
    delta = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    state = {}

    def add(_m, _i, out):
        h = out[0] if isinstance(out, tuple) else out
        if "h0" not in state:
            state["h0"] = h[0, idxs[0]].detach().clone()
        h = h.clone()
        for r, i in enumerate(idxs):
            h[r, i] = h[r, i] + delta
        return (h, *out[1:]) if isinstance(out, tuple) else h

    for p in model.parameters():
        p.requires_grad_(False)
    for it in range(steps):
        opt.zero_grad()
        handle = where.register_forward_hook(add)
        try:
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        finally:
            handle.remove()
        nll = []
        for r in range(len(rows) - 1):
            n = len(rows[r])
            nll.append(-sum(logp[r, n - len(t_ids) + j, t] for j, t in enumerate(t_ids)) / len(t_ids))
        kl_lp = logp[len(rows) - 1, idxs[-1]]
        if "kl0" not in state:
            state["kl0"] = kl_lp.detach().clone()
        kl = (kl_lp.exp() * (kl_lp - state["kl0"])).sum()
        loss = torch.stack(nll).mean() + kl_factor * kl + wd * delta.norm() / state["h0"].norm() ** 2
        if mpes:
            checked = range(1, len(rows) - 1) if len(rows) > 2 else range(0, 1)
            top1 = all(logp[r, len(rows[r]) - len(t_ids) + j].argmax().item() == t for r in checked for j, t in enumerate(t_ids))
            state["hits"] = state.get("hits", 0) + int(top1)
        if loss.item() < 5e-2 or it == steps - 1 or (mpes and state["hits"] >= mpes):
            break
        loss.backward()
        opt.step()
        state["steps"] = state.get("steps", 0) + 1
        with torch.no_grad():
            cap = clamp * state["h0"].norm()
            if delta.norm() > cap:
                delta.mul_(cap / delta.norm())
    if taken is not None:
        taken.append(state.get("steps", 0))
    return (state["h0"] + delta.detach()).double(), state["h0"].double()


def add_delta(model, layer, dW: torch.Tensor) -> None:
    W = proj(model, layer).weight
    with torch.no_grad():
        W += (dW.T if PATHS[model.config.model_type][3] else dW).to(W.dtype)


def block_outputs(model, tok, reqs, layer) -> torch.Tensor:
    return torch.stack([at_plain(model, tok, r, block(model, layer), False) for r in reqs], 1)


def memit_like(model, tok, reqs, layers, groups, solve, tcfg) -> list[torch.Tensor]:
    """MEMIT's pipeline (also EMMET's and AlphaEdit's): targets at the last layer, then for each
    layer keys, the residual still missing at the last layer, its share, the solve; written."""
    Z = torch.stack([target(model, tok, r, layers[-1], groups, **tcfg)[0] for r in reqs], 1)
    out = []
    for i, l in enumerate(layers):
        K = torch.stack([key(model, tok, r, l, groups) for r in reqs], 1)
        R = (Z - block_outputs(model, tok, reqs, layers[-1])) / (len(layers) - i)
        dW = solve(l, K, R)
        add_delta(model, l, dW)
        out.append(dW)
    return out


def memit_solve(C0s, lam):
    return lambda l, K, R: R @ K.T @ torch.linalg.inv(lam * C0s[l] + K @ K.T)


def emmet_solve(C0s, lam, alpha):
    def solve(l, K, R):
        Ci = torch.linalg.inv(lam * C0s[l])
        D = K.T @ Ci @ K
        if D.shape[0] > 1:
            D = D + alpha * torch.eye(D.shape[0], dtype=D.dtype)
        return R @ torch.linalg.inv(D) @ K.T @ Ci

    return solve


def projector(C0: torch.Tensor, threshold: float) -> torch.Tensor:
    U, S, _ = torch.linalg.svd(C0)
    U0 = U[:, S < threshold]
    return U0 @ U0.T


def alphaedit_solve(C0s, threshold, L2, cache: dict):
    """`cache[l]` holds Kp Kpᵀ (earlier batches' keys); update it with `alphaedit_remember`."""

    def solve(l, K, R):
        P = projector(C0s[l], threshold)
        Cp = cache.get(l, torch.zeros_like(C0s[l]))
        A = P @ (K @ K.T + Cp) + L2 * torch.eye(K.shape[0], dtype=K.dtype)
        return torch.linalg.solve(A, P @ K @ R.T).T

    return solve


def alphaedit_remember(model, tok, reqs, layers, groups, cache: dict) -> None:
    """After a batch is written: its keys, read from the edited model, join Kp Kpᵀ."""
    for l in layers:
        K = torch.stack([key(model, tok, r, l, groups) for r in reqs], 1)
        cache[l] = cache.get(l, torch.zeros(K.shape[0], K.shape[0], dtype=K.dtype)) + K @ K.T


def rome(model, tok, req, layer, templates: list[str], C0, tcfg, constraint_key="plain") -> torch.Tensor:
    """ROME's rank-one ΔW for one request (written into the model)."""
    kbar = key(model, tok, req, layer, [templates])
    v_star, _ = target(model, tok, req, layer, [templates], at="mlp", **tcfg)
    k = at_plain(model, tok, req, proj(model, layer), True) if constraint_key == "plain" else kbar
    v = at_plain(model, tok, req, proj(model, layer), False)
    u = torch.linalg.inv(C0) @ kbar
    dW = torch.outer(v_star - v, u) / (k @ u)
    add_delta(model, layer, dW)
    return dW
