"""Float64 linear-algebra helpers shared by the objective solvers.

Every system editkit solves is symmetric positive (semi-)definite, A: (m, m). We factor it once
with Cholesky (A = L Lᵀ) and solve against right-hand sides; no explicit inverse is ever formed.
A factorisation that fails, or whose pivots show the matrix is numerically singular, raises
`SingularSystemError` naming which system failed and what to do about it.
"""

from __future__ import annotations

import torch

# Smallest acceptable ratio min(diag L)² / max(diag L)² (≈ 1 / condition number of A).
RCOND = 1e-13


class SingularSystemError(ValueError):
    pass


class NonFiniteError(ValueError):
    pass


def as64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(dtype=torch.float64)


def check_finite(x: torch.Tensor, what: str) -> None:
    """NonFiniteError if x holds a NaN or an Inf. The sum is checked first (NaN and Inf reach it;
    a finite sum means every entry is finite): one pass with no (numel,) mask, 2.6 ms instead of
    46 ms on a 3 072² float64 C0 (measured here); only a non-finite sum (NaN/Inf, or an overflow)
    takes the elementwise check."""
    if x.numel() and bool(torch.isfinite(x.sum())):
        return
    if not torch.isfinite(x).all():
        raise NonFiniteError(
            f"{what} contains NaN or Inf; nothing was written. Recompute it (for statistics, "
            "delete the cache entry; for keys or targets, check the model's weights and dtype)."
        )


def cholesky(A: torch.Tensor, what: str, remedy: str) -> torch.Tensor:
    """Lower Cholesky factor of the SPD matrix A (m, m), or SingularSystemError."""
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        d = torch.diagonal(L) ** 2
        if d.min() > RCOND * d.max():
            return L
    raise SingularSystemError(f"the {what} system is singular or not positive definite; {remedy}")


def spd_solve(A: torch.Tensor, B: torch.Tensor, what: str, remedy: str) -> torch.Tensor:
    """X with A X = B for SPD A (m, m) and B (m, k)."""
    return torch.cholesky_solve(B, cholesky(A, what, remedy))


def right_solve(B: torch.Tensor, A: torch.Tensor, what: str, remedy: str) -> torch.Tensor:
    """X with X A = B for SPD A (m, m) and B (k, m): X = (A⁻¹ Bᵀ)ᵀ since A = Aᵀ."""
    return spd_solve(A, B.T, what, remedy).T
