"""benchmarks/teaching/key_overlap.py's share is what ROME's update gives another key.

For ΔW = (v − W k_s)(C0⁻¹k_s)ᵀ / (k_sᵀC0⁻¹k_s), solved by editkit's "rome" objective, another
key k_n moves by ΔW k_n = r · (v − W k_s) with r = k_nᵀC0⁻¹k_s / k_sᵀC0⁻¹k_s.
"""

from pathlib import Path

import torch
from conftest import load_script, random_problem

from editkit.objectives import OBJECTIVES, Preservation

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "teaching" / "key_overlap.py"


def test_the_share_is_what_a_rome_update_gives_another_key(gen):
    W, K, V, C0, _ = random_problem(gen, d_out=7, d_in=12, n=2)
    (k_s, k_n), v = K.T, V[:, 0]
    dW = OBJECTIVES.get("rome").build()(k_s[:, None], (v - W @ k_s)[:, None], Preservation(C0))
    r = load_script(PATH, "bench_key_overlap").edit_share(k_s, k_n, torch.linalg.inv(C0))
    assert torch.allclose(dW @ k_s, v - W @ k_s, atol=1e-10)  # the edit takes: the share to itself is 1
    assert torch.allclose(dW @ k_n, r * (v - W @ k_s), atol=1e-10)
    assert abs(r) > 1e-3  # a random pair of keys overlaps: the check above is not 0 = 0
