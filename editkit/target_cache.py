"""Memoised target values, shared between editors: `Editor(...).target_cache = cache`.

Target values depend only on the model's weights, the batch of requests, the last edited layer,
the context templates and the TargetConfig, not on the objective or the strategy. Runs of a sweep
that edit the same batch of the unedited model (EMMET, MEMIT, AlphaEdit, single or spread, same
layers) therefore get identical targets, and computing them once saves most of a sweep's time.

    key = H(digest of every edited-projection weight, layer, templates, TargetConfig, requests)

The weight digest means a call on an edited model (ROME's one-at-a-time edits, a sequence) can
never hit an entry made on another state. Entries are dropped oldest first beyond max_entries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import torch

from .architectures import num_layers, weight_param


def digest(fields: dict) -> str:
    """A short stable hash of JSON-able fields."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:20]


class TargetCache:
    def __init__(self, max_entries: int = 4096):
        self.entries: dict[str, Any] = {}
        self.max_entries = max_entries
        self.hits = 0

    @staticmethod
    def _state(model) -> str:
        h = hashlib.blake2b(digest_size=16)
        for l in range(num_layers(model)):
            h.update(weight_param(model, l).detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def get(self, compute: Callable, model, tok, requests, layer, templates, cfg, **kw):
        """compute(model, tok, requests, layer, templates, cfg, **kw), or its stored result."""
        key = digest({
            "state": self._state(model), "layer": layer, "templates": list(templates),
            "cfg": cfg.model_dump(mode="json"), "requests": [r.model_dump(mode="json") for r in requests],
        })
        if key in self.entries:
            self.hits += 1
            return self.entries[key]
        out = compute(model, tok, requests, layer, templates, cfg, **kw)
        if len(self.entries) >= self.max_entries:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = out
        return out
