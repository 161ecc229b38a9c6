"""benchmarks/teaching/key_overlap.py's share is what ROME's update gives another key.

For ΔW = (v − W k_s)(C0⁻¹k_s)ᵀ / (k_sᵀC0⁻¹k_s), solved by editkit's "rome" objective, another
key k_n moves by ΔW k_n = r · (v − W k_s) with r = k_nᵀC0⁻¹k_s / k_sᵀC0⁻¹k_s.
"""

import importlib.util
from pathlib import Path

import torch

from editkit.objectives import OBJECTIVES, Preservation

ROOT = Path(__file__).resolve().parents[2]


def _key_overlap():
    spec = importlib.util.spec_from_file_location("bench_key_overlap", ROOT / "benchmarks" / "teaching" / "key_overlap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_share_is_what_a_rome_update_gives_another_key():
    g = torch.Generator().manual_seed(0)
    d_in, d_out = 12, 7
    A = torch.randn(d_in, 3 * d_in, generator=g, dtype=torch.float64)
    C0 = A @ A.T / A.shape[1]
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    k_s, k_n, v = (torch.randn(d, generator=g, dtype=torch.float64) for d in (d_in, d_in, d_out))
    dW = OBJECTIVES.get("rome").build()(k_s[:, None], (v - W @ k_s)[:, None], Preservation(C0))
    r = _key_overlap().edit_share(k_s, k_n, torch.linalg.inv(C0))
    assert torch.allclose(dW @ k_s, v - W @ k_s, atol=1e-10)  # the edit takes: the share to itself is 1
    assert torch.allclose(dW @ k_n, r * (v - W @ k_s), atol=1e-10)
    assert abs(r) > 1e-3  # a random pair of keys overlaps: the check above is not 0 = 0
