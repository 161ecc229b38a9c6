"""Where the edited weight lives in each model family: one small table per architecture.

editkit edits the MLP output projection of a transformer block,

    value = W key,        key: (d_in,) = MLP hidden activation (input of the projection)
                          value: (d_out,) = MLP output added to the residual stream
    W: (d_out, d_in)      d_in = d_ff (e.g. 3072 for GPT-2 small), d_out = d_model (768)

Every module path below is data, not code: adding a family is one new `Architecture` entry in
`ARCHITECTURES`. The one awkward fact is stated here, once: GPT-2 (and its derivatives) store
`mlp.c_proj` as a `transformers.pytorch_utils.Conv1D` whose `.weight` is (d_in, d_out), i.e. the
*transpose* of W. `transposed=True` says so; `read_weight`, `as_math` and `add_delta` turn it into the (d_out,
d_in) convention everywhere else in editkit. The orientation is never guessed from a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Architecture:
    """Module paths of one model family. `{}` stands for the layer index."""

    blocks: str  # the ModuleList of transformer blocks
    mlp: str  # the MLP of block {} (its output is added to the residual stream)
    attn: str  # the attention module of block {}
    proj: str  # the MLP output projection W of block {}
    embed: str  # token embedding
    final_norm: str  # norm before the unembedding
    unembed: str  # the output head
    transposed: bool  # True when proj.weight is stored (d_in, d_out) (GPT-2's Conv1D)


ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture(
        blocks="transformer.h",
        mlp="transformer.h.{}.mlp",
        attn="transformer.h.{}.attn",
        proj="transformer.h.{}.mlp.c_proj",
        embed="transformer.wte",
        final_norm="transformer.ln_f",
        unembed="lm_head",
        transposed=True,
    ),
    "gptj": Architecture(
        blocks="transformer.h",
        mlp="transformer.h.{}.mlp",
        attn="transformer.h.{}.attn",
        proj="transformer.h.{}.mlp.fc_out",
        embed="transformer.wte",
        final_norm="transformer.ln_f",
        unembed="lm_head",
        transposed=False,
    ),
    "gpt_neox": Architecture(
        blocks="gpt_neox.layers",
        mlp="gpt_neox.layers.{}.mlp",
        attn="gpt_neox.layers.{}.attention",
        proj="gpt_neox.layers.{}.mlp.dense_4h_to_h",
        embed="gpt_neox.embed_in",
        final_norm="gpt_neox.final_layer_norm",
        unembed="embed_out",
        transposed=False,
    ),
    "llama": Architecture(
        blocks="model.layers",
        mlp="model.layers.{}.mlp",
        attn="model.layers.{}.self_attn",
        proj="model.layers.{}.mlp.down_proj",
        embed="model.embed_tokens",
        final_norm="model.norm",
        unembed="lm_head",
        transposed=False,
    ),
}
# Qwen2 and Mistral use Llama's module names exactly.
ARCHITECTURES["qwen2"] = ARCHITECTURES["llama"]
ARCHITECTURES["mistral"] = ARCHITECTURES["llama"]


class UnknownArchitectureError(ValueError):
    pass


def architecture_of(model: nn.Module) -> Architecture:
    """The table entry for `model.config.model_type`, or an error saying how to add one."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"editkit has no architecture table for model_type={model_type!r}. Known: "
            f"{sorted(ARCHITECTURES)}. Add one entry to editkit.architectures.ARCHITECTURES naming "
            "the blocks, the MLP, its output projection (and whether its weight is stored "
            "transposed), the embedding, the final norm and the unembedding."
        )
    return ARCHITECTURES[model_type]


def module(model: nn.Module, path: str, layer: int | None = None) -> nn.Module:
    return model.get_submodule(path.format(layer) if layer is not None else path)


def num_layers(model: nn.Module) -> int:
    return len(module(model, architecture_of(model).blocks))


def context_length(model: nn.Module) -> int | None:
    """Positions the model can embed (n_positions / max_position_embeddings), None if its config names none."""
    c = model.config
    return getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None)


def proj_module(model: nn.Module, layer: int) -> nn.Module:
    return module(model, architecture_of(model).proj, layer)


def read_weight(model: nn.Module, layer: int) -> torch.Tensor:
    """W of `layer` as a (d_out, d_in) view of the stored parameter (no copy)."""
    return as_math(model, proj_module(model, layer).weight)


def as_math(model: nn.Module, stored: torch.Tensor) -> torch.Tensor:
    """A tensor stored like the model's edited weights, as (d_out, d_in) (a view)."""
    return stored.T if architecture_of(model).transposed else stored


def weight_param(model: nn.Module, layer: int) -> nn.Parameter:
    """The stored parameter itself (orientation as stored)."""
    return proj_module(model, layer).weight


def check_layers(model: nn.Module, layers: list[int]) -> None:
    n = num_layers(model)
    bad = [l for l in layers if not (0 <= l < n)]
    if bad or not layers:
        raise ValueError(
            f"layers {layers} are out of range: this model has {n} layers (0..{n - 1}). "
            "Pass layer indices in that range, e.g. layers=[" + str(min(n - 1, n // 3)) + "]."
        )
    if sorted(set(layers)) != list(layers):
        raise ValueError(f"layers {layers} must be strictly increasing and without repeats.")
    offloaded = [l for l in layers if weight_param(model, l).device.type == "meta"]
    if offloaded:
        raise ValueError(
            f"the weights of layers {offloaded} are offloaded (accelerate keeps them on the meta device and loads them "
            "only for each forward pass), so an edit could not be written there. Load the model with a device_map that "
            "keeps the edited layers on a GPU or the CPU and offloads other modules only."
        )


def device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def add_delta(model, layer: int, delta: torch.Tensor) -> None:
    """W ← W + ΔW in the model's own dtype and orientation (the one place an edit is written)."""
    p = weight_param(model, layer)
    d = delta.T if architecture_of(model).transposed else delta
    p.add_(d.to(device=p.device, dtype=p.dtype))
