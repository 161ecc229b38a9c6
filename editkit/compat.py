"""The transformers attention-cache API, across versions.

transformers ≥ 5.x calls the attention cache `cache` (forward keyword and output field) and
deprecates `past_key_values` (to be removed in 5.40); 4.x only knows `past_key_values`. editkit
passes and reads it by whichever name the model's forward takes, so it runs without deprecation
warnings on both.
"""

from __future__ import annotations

import inspect
from functools import lru_cache


@lru_cache(maxsize=None)
def _cache_name(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(model, cache) -> dict:
    """{name: cache} for `model(..., **cache_kwargs(model, c))`."""
    return {_cache_name(type(model)): cache}


def cache_of(output):
    """The attention cache a forward returned (None if it returned none)."""
    for name in ("cache", "past_key_values"):
        if name in output.keys():
            return output[name]
    return None
