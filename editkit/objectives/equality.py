"""Equality-constrained objective: EMMET (batched), ROME (n = 1, one request at a time).

    minimise  tr(ΔW C ΔWᵀ)   subject to   (W + ΔW) K = V,   i.e. ΔW K = R,
    C = λ C0 + Kp Kpᵀ  (d_in, d_in)

Lagrange's solution, with EMMET's α I added to D for stability (α = 0 is the exact constraint):

    D  = Kᵀ C⁻¹ K                    (n, n)
    ΔW = R (D + α I)⁻¹ Kᵀ C⁻¹        (d_out, d_in)

With n = 1 and α = 0 this is ROME's rank-one update ΔW = r (C⁻¹k)ᵀ / (kᵀ C⁻¹ k); λ then cancels.
A single edit always gets α = 0, as in unified-model-editing's EMMET (it adds αI to D only when
D is larger than 1 × 1): EMMET with n = 1 is ROME.

Constraint keys Kc ≠ K (ROME's original update, `constraint_key="plain"`): the direction stays
C⁻¹K, the constraint ΔW Kc = R is met exactly (α = 0) with

    D  = Kᵀ C⁻¹ Kc   (n, n; not symmetric, solved by LU),   ΔW = R (D + α I)⁻¹ Kᵀ C⁻¹
    n = 1:  ΔW = r (C⁻¹k̄)ᵀ / (k_cᵀ C⁻¹ k̄)         (rome/compute_v.py: right vector over k_c · u)

Which form is solved:
  * 2n < d_in (or α = 0): the n × n form above, one Cholesky of C (cached per layer) and one of
    D + α I;  cost O(d_in² n + d_in n² + n³) once C is factored.
  * 2n ≥ d_in and α > 0: the push-through identity (D + αI)⁻¹ Kᵀ C⁻¹ = Kᵀ (K Kᵀ + α C)⁻¹ gives
        ΔW = R Kᵀ (K Kᵀ + α C)⁻¹,   one d_in × d_in Cholesky.
    The switch at n = d_in/2 is measured (benchmarks/speed/RESULTS.md, d_in = 3072, float64):
    the n × n form's d_in n² + n³/3 overtakes the d_in³/3 of the other between n ≈ 1500 and 2000.
    (It also shows EMMET with α > 0 is MEMIT's least squares with λ' = α λ.)
With α = 0, n ≥ d_in or repeated keys make D singular: the constraints cannot all hold exactly.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..linalg import SingularSystemError, right_solve
from .base import Objective, ObjectiveConfig, Preservation, register

REMEDY_C = (
    "C = λC0 + KpKpᵀ must be positive definite: use λ > 0, statistics over more tokens, and a ridge "
    "(Editor(..., ridge=1e-6)) where MLP units never fire (C0 singular)."
)
REMEDY_D = (
    "Kᵀ C⁻¹ K is singular, usually because two requests share the same key (drop the duplicate) "
    "or there are more edits than key dimensions; use alpha > 0 (e.g. 0.1) to regularise."
)


class EqualityConfig(ObjectiveConfig):
    mom2_weight: float = Field(1.0, gt=0)  # λ
    alpha: float = Field(0.1, ge=0)  # α, EMMET's stabiliser of D


@register(
    "emmet",
    alpha=0.1,
    mom2_weight=1000.0,
    reference="scalable-model-editing/unified-model-editing: emmet/emmet_main.py (solve), compute_ks/compute_z (MEMIT's); hparams/EMMET/gpt2-xl.json",
)
@register(
    "rome",
    one_at_a_time=True,
    alpha=0.0,
    mom2_weight=1.0,  # cancels in ROME's update
    conventions=dict(delta_module="mlp", context="rome", constraint_key="plain", clamp_factor=4.0),
    reference="kmeng01/rome: rome/compute_u.py (key), compute_v.py (target, right vector), rome_main.py; hparams/ROME/gpt2-xl.json",
)
class Equality(Objective):
    Config = EqualityConfig
    name = "equality"
    takes_constraint_keys = True

    def solve(self, K: torch.Tensor, R: torch.Tensor, pres: Preservation, Kc: torch.Tensor | None = None) -> torch.Tensor:
        n, d_in = K.shape[1], K.shape[0]
        lam, alpha = self.config.mom2_weight, (self.config.alpha if n > 1 else 0.0)
        if Kc is not None:
            L = pres.cholesky(lam, "C = λC0 + KpKpᵀ", REMEDY_C)
            CinvK = torch.cholesky_solve(K, L)  # (d_in, n)
            D = CinvK.T @ Kc + alpha * torch.eye(n, dtype=K.dtype, device=K.device)  # (n, n)
            if n == 1 and float(D.abs()) < 1e-300:
                raise SingularSystemError(f"k_cᵀ C⁻¹ k̄ = 0: the plain key is C⁻¹-orthogonal to the averaged one; {REMEDY_D}")
            X = torch.linalg.solve_ex(D.T, R.T)  # Xᵀ = R (D + αI)⁻¹
            if int(X.info) != 0:
                raise SingularSystemError(f"the Kᵀ C⁻¹ Kc + αI system is singular; {REMEDY_D}")
            return X.result.T @ CinvK.T
        if alpha > 0 and 2 * n >= d_in:
            A = K @ K.T + alpha * pres.weighted(lam)  # (d_in, d_in)
            return right_solve(R @ K.T, A, "K Kᵀ + αC", REMEDY_D)
        L = pres.cholesky(lam, "C = λC0 + KpKpᵀ", REMEDY_C)
        CinvK = torch.cholesky_solve(K, L)  # (d_in, n)
        D = K.T @ CinvK  # (n, n)
        D = D + alpha * torch.eye(n, dtype=D.dtype, device=D.device)
        return right_solve(R, D, "D + αI = KᵀC⁻¹K + αI", REMEDY_D) @ CinvK.T
