"""Tests in three tiers, each runnable alone:

    tests/unit         pure math against definitions: solvers, strategies on a fake model,
                       transforms, corpora; no model (`pytest tests/unit`, seconds)
    tests/integration  tiny models of each family: fast paths against plain reimplementations
                       (tests/plain_reference.py) at stated tolerances, editor, sweeps, tracing
    tests/system       the shipped teaching model, the CLI, sequential runs, the teaching corpus

Shared helpers live here: models.py (tiny models), plain_reference.py, fakes.py.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # the helpers, for tests in every tier

# Statistics the tests compute go to a temporary cache, never into the user's ~/.cache/editkit.
os.environ["EDITKIT_CACHE"] = tempfile.mkdtemp(prefix="editkit-test-cache-")

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)  # tests use tiny models: one thread is faster and immune to oversubscription


def load_script(path: Path, name: str):
    """A benchmark script (not a package module) imported by path as `name`, registered in
    sys.modules (dataclasses look their module up there); its `__main__` part does not run."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def random_problem(gen, d_out=6, d_in=10, n=4, m=0):
    """A random well-conditioned solver problem (float64): W, K, V, C0, Kp."""
    W = torch.randn(d_out, d_in, generator=gen, dtype=torch.float64)
    K = torch.randn(d_in, n, generator=gen, dtype=torch.float64)
    V = torch.randn(d_out, n, generator=gen, dtype=torch.float64)
    X = torch.randn(d_in, 5 * d_in, generator=gen, dtype=torch.float64)
    C0 = X @ X.T / X.shape[1]
    Kp = torch.randn(d_in, m, generator=gen, dtype=torch.float64) if m else None
    return W, K, V, C0, Kp
