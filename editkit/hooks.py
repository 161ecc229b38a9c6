"""Temporary forward hooks, always removed in `finally` (nothing leaks when an exception flies).

    with hooks((module, fn), ...):  model(...)        # fn(module, inputs, output) → output | None
    with stop_after(module): model(...)               # the forward pass ends once `module` ran
    with swapped(model, {"transformer.h.3": m}): …     # submodules replaced, originals put back
    with eval_mode(model): …                          # dropout off; the train/eval mode restored
    with frozen(model): …                             # no gradients, eval mode; both restored
    StandIn(original, give)                           # a block that hands back give(hidden_in)

Every helper that changes a model's state for a while lives here, and restores it in `finally`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

Hook = Callable[[nn.Module, tuple, object], object]


@contextmanager
def hooks(*pairs: tuple[nn.Module, Hook]) -> Iterator[None]:
    handles = []
    try:
        for module, fn in pairs:
            handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


class _Stop(Exception):
    pass


@contextmanager
def stop_after(module: nn.Module | None) -> Iterator[None]:
    """Stop the forward pass right after `module` ran (no stop when module is None)."""
    if module is None:
        yield
        return

    def stop(_m, _i, _o):
        raise _Stop

    try:
        with hooks((module, stop)):
            yield
    except _Stop:
        pass


def hidden_of(output) -> torch.Tensor:
    """The hidden-state tensor of a block's output (blocks may return tuples)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def replace_hidden(output, hidden: torch.Tensor):
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    return hidden


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off (eval mode) inside the block; the model's train/eval mode restored after."""
    training = model.training
    try:
        model.eval()
        yield
    finally:
        model.train(training)


@contextmanager
def frozen(model):
    """Parameters need no gradient and dropout is off while δ is optimised; restored after."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        model.requires_grad_(False)
        with eval_mode(model):
            yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


@contextmanager
def swapped(model: nn.Module, stand_ins: dict[str, nn.Module]) -> Iterator[None]:
    """The submodule at each dotted path ("transformer.h.3", "model.layers.7.mlp") is replaced by
    its stand-in inside the block; the originals are put back in `finally`, also on exceptions."""
    done: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        for path, new in stand_ins.items():
            parent_path, _, name = path.rpartition(".")
            parent = model.get_submodule(parent_path)
            done.append((parent, name, getattr(parent, name)))
            setattr(parent, name, new)
        yield
    finally:
        for parent, name, original in reversed(done):
            setattr(parent, name, original)


class StandIn(nn.Module):
    """Takes the place of block i ≤ L during the fast path: returns `give(hidden_in)`.
    Attributes the model's loop may read from a block (e.g. `attention_type`) come from the original."""

    def __init__(self, original: nn.Module, give: Callable[[torch.Tensor], object]):
        super().__init__()
        self.__dict__["_original"] = original  # a plain attribute, not a submodule
        self.__dict__["_give"] = give

    def forward(self, hidden_states, *args, **kwargs):
        return self._give(hidden_states)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_original"], name)
