"""Null-space objective: AlphaEdit (Fang et al., ICLR 2025).

The update is confined to directions the preserved keys do not use. With C0 = U Λ Uᵀ
(eigenvalues ascending), U0 (d_in, r) holds the eigenvectors whose eigenvalue is below
`null_threshold` × the largest, and P = U0 U0ᵀ projects onto that (near-)null space. Then

    ΔW = R Kᵀ P (K Kᵀ P + Kp Kpᵀ P + β I)⁻¹          (d_out, d_in)

Because ΔW (I − P) = 0 for β > 0, ΔW = Z U0ᵀ, and multiplying by U0 on the right gives an
r × r symmetric system (Q = U0ᵀ K (r, n), E = U0ᵀ Kp (r, m)):

    Z (Q Qᵀ + E Eᵀ + β I_r) = R Qᵀ,    ΔW = Z U0ᵀ

and when n + m < r, the push-through identity with F = [Q E] (r, n+m) gives the smaller
    Z = R [I_n 0] (Fᵀ F + β I)⁻¹ Fᵀ.
The range of the kept eigenvectors (the preserved subspace) is left exactly untouched:
ΔW U_keep = 0. With nothing preserved (r = d_in) this is ridge least squares R Kᵀ (KKᵀ + KpKpᵀ + βI)⁻¹.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..linalg import right_solve
from .base import Objective, ObjectiveConfig, Preservation, register

REMEDY = "use a ridge beta > 0 (e.g. 1.0)."


class NullSpaceConfig(ObjectiveConfig):
    null_threshold: float = Field(1e-2, ge=0)  # relative eigenvalue threshold
    beta: float = Field(1.0, gt=0)  # ridge β


def null_basis(pres: Preservation, threshold: float) -> torch.Tensor:
    """U0 (d_in, r): eigenvectors of C0 with eigenvalue < threshold · max eigenvalue."""
    evals, evecs = pres.eigh()
    return evecs[:, evals < threshold * evals.max()]


@register("alphaedit", null_threshold=1e-2, beta=1.0)
class NullSpace(Objective):
    Config = NullSpaceConfig
    name = "null_space"

    def solve(self, K: torch.Tensor, R: torch.Tensor, pres: Preservation) -> torch.Tensor:
        beta = self.config.beta
        U0 = null_basis(pres, self.config.null_threshold)  # (d_in, r)
        r, n = U0.shape[1], K.shape[1]
        if r == 0:
            raise ValueError(
                f"no eigenvalue of C0 is below null_threshold={self.config.null_threshold} × the "
                "largest, so the null space is empty and nothing can be edited; raise null_threshold."
            )
        Q = U0.T @ K  # (r, n)
        F = Q if pres.Kp is None else torch.cat([Q, U0.T @ pres.Kp], dim=1)  # (r, n + m)
        if F.shape[1] < r:
            G = F.T @ F + beta * torch.eye(F.shape[1], dtype=F.dtype)
            Z = right_solve(R @ torch.eye(n, F.shape[1], dtype=F.dtype), G, "FᵀF + βI", REMEDY) @ F.T
        else:
            G = F @ F.T + beta * torch.eye(r, dtype=F.dtype)
            Z = right_solve(R @ Q.T, G, "QQᵀ + EEᵀ + βI", REMEDY)
        return Z @ U0.T
