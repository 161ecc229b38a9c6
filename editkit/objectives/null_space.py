"""Null-space objective: AlphaEdit (Fang et al., ICLR 2025).

The update is confined to directions the preserved keys do not use. With C0 = U Λ Uᵀ
(eigenvalues ascending; for the symmetric PSD C0 these are its singular values and vectors),
U0 (d_in, r) holds the eigenvectors whose eigenvalue is below `null_threshold`, and P = U0 U0ᵀ
projects onto that (near-)null space. As in AlphaEdit's code (`get_project`: SVD of C0, singular
values below `nullspace_threshold`, 2e-2 in its hparams files) the threshold is absolute;
`threshold_scale="relative"` reads it as a fraction of the largest eigenvalue instead. C0 alone
sets P; earlier edits' keys enter only through Kp below (AlphaEdit's `cache_c`), and λC0 does
not enter the solve. β is AlphaEdit's `L2` (10 in its hparams files). Then

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

from typing import Literal

import torch
from pydantic import Field

from ..linalg import right_solve
from .base import Objective, ObjectiveConfig, Preservation, register

REMEDY = "use a ridge beta > 0 (e.g. 1.0)."


class NullSpaceConfig(ObjectiveConfig):
    null_threshold: float = Field(2e-2, ge=0)  # eigenvalue threshold (AlphaEdit's nullspace_threshold)
    threshold_scale: Literal["absolute", "relative"] = "absolute"  # relative: × the largest eigenvalue
    beta: float = Field(10.0, gt=0)  # ridge β (AlphaEdit's L2)


def null_basis(pres: Preservation, threshold: float, scale: str = "absolute") -> torch.Tensor:
    """U0 (d_in, r): eigenvectors of C0 with eigenvalue < threshold (× the largest if relative)."""
    evals, evecs = pres.eigh()
    cut = threshold * evals.max() if scale == "relative" else threshold
    return evecs[:, evals < cut]


@register(
    "alphaedit",
    null_threshold=2e-2,
    beta=10.0,
    conventions=dict(keep_edited_keys=True),
    reference=(
        "jianghoucheng/AlphaEdit: AlphaEdit_main.py (solve, cache_c), get_project (P); keys and targets its memit-derived "
        "compute_ks/compute_z; hparams/AlphaEdit/gpt2-xl.json"
    ),
)
class NullSpace(Objective):
    Config = NullSpaceConfig
    name = "null_space"

    def solve(self, K: torch.Tensor, R: torch.Tensor, pres: Preservation) -> torch.Tensor:
        beta = self.config.beta
        cfg = self.config
        U0 = null_basis(pres, cfg.null_threshold, cfg.threshold_scale)  # (d_in, r)
        r, n = U0.shape[1], K.shape[1]
        if r == 0:
            evals, _ = pres.eigh()
            raise ValueError(
                f"no eigenvalue of C0 is below null_threshold={cfg.null_threshold} ({cfg.threshold_scale}; "
                f"the eigenvalues span {float(evals.min()):.3g} … {float(evals.max()):.3g}), so the null "
                "space is empty and nothing can be edited; raise null_threshold."
            )
        Q = U0.T @ K  # (r, n)
        F = Q if pres.Kp is None else torch.cat([Q, U0.T @ pres.Kp], dim=1)  # (r, n + m)
        if F.shape[1] < r:
            G = F.T @ F + beta * torch.eye(F.shape[1], dtype=F.dtype, device=F.device)
            Z = right_solve(R @ torch.eye(n, F.shape[1], dtype=F.dtype, device=F.device), G, "FᵀF + βI", REMEDY) @ F.T
        else:
            G = F @ F.T + beta * torch.eye(r, dtype=F.dtype, device=F.device)
            Z = right_solve(R @ Q.T, G, "QQᵀ + EEᵀ + βI", REMEDY)
        return Z @ U0.T
