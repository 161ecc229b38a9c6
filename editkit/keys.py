"""Keys and hidden states read from a real model: the `LayerAccess` a strategy sees.

    key k_i   (d_in,)  input of the MLP output projection at the edit token (the subject's last
                       token unless `fact_token` says otherwise),
                       averaged over the context templates (the same averaged key is used for the
                       residual and in the constraint: r-ROME's fix of ROME's key mismatch)
    h_i       (d,)     output of a block at the edit token of the plain prompt
    K = [k_1 … k_n]  (d_in, n),   H = [h_1 … h_n]  (d, n),   float64
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .architectures import architecture_of, module, read_weight, weight_param
from .hooks import hidden_of, hooks, stop_after
from .requests import EditRequest
from .tokens import edit_position, encode_batch


@dataclass
class Located:
    """Texts with the token index where each reads or writes, and the request each belongs to."""

    texts: list[str]
    index: list[int]  # subject's last token in each text
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


def device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def read_at(model, tok, located: Located, target: torch.nn.Module, *, read_input: bool, batch_size: int = 32) -> torch.Tensor:
    """(len(texts), d) the input (or output hidden state) of `target` at each text's index.
    The forward pass stops right after `target`."""
    out, dev = [], device_of(model)
    for s in range(0, len(located.texts), batch_size):
        ids, mask, _ = encode_batch(tok, located.texts[s : s + batch_size], dev)
        rows = torch.arange(ids.shape[0], device=dev)
        idx = torch.tensor(located.index[s : s + batch_size], device=dev)
        got = {}

        def grab(_m, inputs, output):
            x = inputs[0] if read_input else hidden_of(output)
            got["x"] = x[rows, idx]

        with hooks((target, grab)), stop_after(target):
            model(input_ids=ids, attention_mask=mask)
        out.append(got["x"].to(torch.float64).cpu())
    return torch.cat(out)


def average_by_owner(x: torch.Tensor, owner: list[int], n: int) -> torch.Tensor:
    """(n, d) mean of the rows of x (m, d) that belong to each owner."""
    o = torch.tensor(owner)
    sums = torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, o, x)
    return sums / torch.bincount(o, minlength=n).unsqueeze(1).to(x.dtype)


class ModelAccess:
    """`LayerAccess` over a transformers model for a batch of requests."""

    def __init__(self, model, tok, requests: list[EditRequest], templates: list[str], batch_size: int = 32, fact_token: str = "subject_last"):
        self.model, self.tok, self.n = model, tok, len(requests)
        self.arch = architecture_of(model)
        self.batch_size = batch_size
        self.with_context = locate(tok, requests, templates, fact_token)
        self.plain = locate(tok, requests, ["{}"], fact_token)

    def keys(self, layer: int) -> torch.Tensor:
        proj = module(self.model, self.arch.proj, layer)
        k = read_at(self.model, self.tok, self.with_context, proj, read_input=True, batch_size=self.batch_size)
        return average_by_owner(k, self.with_context.owner, self.n).T  # (d_in, n)

    def outputs(self, layer: int) -> torch.Tensor:
        block = module(self.model, self.arch.blocks)[layer]
        return read_at(self.model, self.tok, self.plain, block, read_input=False, batch_size=self.batch_size).T

    def weight(self, layer: int) -> torch.Tensor:
        return read_weight(self.model, layer).detach().to(torch.float64).cpu()

    def add(self, layer: int, delta: torch.Tensor) -> None:
        add_delta(self.model, layer, delta)


@torch.no_grad()
def add_delta(model, layer: int, delta: torch.Tensor) -> None:
    """W ← W + ΔW in the model's own dtype and orientation (the one place an edit is written)."""
    p = weight_param(model, layer)
    d = delta.T if architecture_of(model).transposed else delta
    p.add_(d.to(device=p.device, dtype=p.dtype))
