"""Temporary forward hooks, always removed in `finally` (nothing leaks when an exception flies).

    with hooks((module, fn), ...):  model(...)        # fn(module, inputs, output) → output | None
    with stop_after(module): model(...)               # the forward pass ends once `module` ran
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

Hook = Callable[[nn.Module, tuple, object], object]


@contextmanager
def hooks(*pairs: tuple[nn.Module, Hook], pre: bool = False) -> Iterator[None]:
    handles = []
    try:
        for module, fn in pairs:
            register = module.register_forward_pre_hook if pre else module.register_forward_hook
            handles.append(register(fn))
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
