"""Where editkit reads and writes: each folder defined once, read when it is needed (so a changed
environment variable takes effect).

    data_dir()    $EDITKIT_DATA; else ../shared/data beside a source checkout (this workplace's
                  layout); else $EDITKIT_CACHE/data, where downloaded data sets are kept
    cache_dir()   $EDITKIT_CACHE, else ~/.cache/editkit: key statistics, downloads, TF-IDF tables
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # <checkout>/../shared/data


def cache_dir() -> Path:
    return Path(os.environ.get("EDITKIT_CACHE", Path.home() / ".cache" / "editkit"))


def data_dir() -> Path:
    env = os.environ.get("EDITKIT_DATA")
    if env:
        return Path(env)
    if _CHECKOUT_DATA.is_dir():
        return _CHECKOUT_DATA
    return cache_dir() / "data"
