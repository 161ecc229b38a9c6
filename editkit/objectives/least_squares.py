"""Least-squares objective: MEMIT.

    minimise  λ tr(ΔW C0 ΔWᵀ) + λ_n ‖ΔW‖²_F + ‖ΔW Kp‖² + ‖(W + ΔW) K − V‖²
    A  = λ C0 + λ_n I + Kp Kpᵀ              (d_in, d_in)  preservation (earlier edits' keys in Kp;
                                                          λ_n = norm_weight, 0 for MEMIT, ENCORE's norm constraint)
    ΔW = R Kᵀ (A + K Kᵀ)⁻¹                  (d_out, d_in)

Which form is solved:
  * 2n < d_in and A invertible: the push-through identity Kᵀ (A + KKᵀ)⁻¹ = (I + Kᵀ A⁻¹ K)⁻¹ Kᵀ A⁻¹
        ΔW = R (I_n + Kᵀ A⁻¹ K)⁻¹ (A⁻¹ K)ᵀ,
    an n × n Cholesky after A's (cached per layer); O(d_in² n + d_in n² + n³) per edit.
  * otherwise (2n ≥ d_in, or λ = 0 with no Kp): one d_in × d_in Cholesky of A + K Kᵀ.
    The switch at n = d_in/2 is measured (benchmarks/speed/RESULTS.md): at d_in = 3072 the
    d_in × d_in form is already the faster one from n ≈ 1500–2000 on.
As λ → 0 the solution tends to the minimum-norm exact solution (the equality objective's).
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..linalg import right_solve
from .base import Objective, ObjectiveConfig, Preservation, register

REMEDY = (
    "λC0 + KpKpᵀ + KKᵀ must be positive definite: use mom2_weight > 0 and key statistics over "
    "more tokens, a ridge (Editor(..., ridge=1e-6)) where MLP units never fire (C0 singular), or "
    "fewer, distinct edits when mom2_weight = 0."
)


class LeastSquaresConfig(ObjectiveConfig):
    mom2_weight: float = Field(1.0, ge=0)  # λ
    norm_weight: float = Field(0.0, ge=0)  # λ_n: the Frobenius-norm penalty on ΔW (ENCORE's update_norm_lambda)


@register(
    "memit",
    mom2_weight=20000.0,
    reference="kmeng01/memit: memit/memit_main.py (solve, spread), compute_ks.py, compute_z.py; hparams/MEMIT/gpt2-xl.json",
)
class LeastSquares(Objective):
    Config = LeastSquaresConfig
    name = "least_squares"

    def solve(self, K: torch.Tensor, R: torch.Tensor, pres: Preservation) -> torch.Tensor:
        lam, norm = self.config.mom2_weight, self.config.norm_weight
        n, d_in = K.shape[1], K.shape[0]
        if 2 * n < d_in and (lam > 0 or norm > 0 or pres.Kp is not None):
            L = pres.cholesky(lam, "λC0 + λ_n I + KpKpᵀ", REMEDY, norm)
            AinvK = torch.cholesky_solve(K, L)  # (d_in, n)
            S = torch.eye(n, dtype=K.dtype, device=K.device) + K.T @ AinvK  # (n, n)
            return right_solve(R, S, "I + KᵀA⁻¹K", REMEDY) @ AinvK.T
        A = pres.weighted(lam, norm) + K @ K.T  # (d_in, d_in)
        return right_solve(R @ K.T, A, "λC0 + λ_n I + KpKpᵀ + KKᵀ", REMEDY)
