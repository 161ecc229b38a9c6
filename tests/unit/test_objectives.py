"""The objective solvers against their defining properties (float64, no model)."""

import pytest
import torch
from conftest import random_problem

from editkit.linalg import SingularSystemError
from editkit.objectives import OBJECTIVES, Preservation, preservation_cost
from editkit.objectives.equality import Equality
from editkit.objectives.least_squares import LeastSquares
from editkit.objectives.null_space import NullSpace, null_basis
from editkit.registry import UnknownNameError


def rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("n", [1, 3, 9])
def test_equality_alpha0_meets_constraint_exactly(gen, n):
    W, K, V, C0, _ = random_problem(gen, n=n)
    dW = Equality(alpha=0.0, mom2_weight=3.0)(K, V - W @ K, Preservation(C0))
    assert rel((W + dW) @ K, V) < 1e-9


def test_equality_n1_is_rome_rank_one(gen):
    W, K, V, C0, _ = random_problem(gen, n=1)
    k, r = K[:, 0], (V - W @ K)[:, 0]
    Cinv_k = torch.linalg.solve(C0, k)
    rome = torch.outer(r, Cinv_k) / (k @ Cinv_k)
    for lam in (1.0, 20000.0):  # λ cancels in ROME's formula
        dW = Equality(alpha=0.0, mom2_weight=lam)(K, V - W @ K, Preservation(C0))
        assert rel(dW, rome) < 1e-10


def test_equality_is_minimum_C0_norm(gen):
    W, K, V, C0, _ = random_problem(gen, n=3)
    dW = Equality(alpha=0.0)(K, V - W @ K, Preservation(C0))
    cost = lambda D: float(torch.trace(D @ C0 @ D.T))
    # any Δ' with Δ'K = 0: project random matrices onto the left null space of K
    Pk = torch.eye(K.shape[0], dtype=K.dtype) - K @ torch.linalg.pinv(K)
    for _ in range(20):
        other = torch.randn(W.shape, generator=gen, dtype=torch.float64) @ Pk
        assert float((other @ K).abs().max()) < 1e-10
        assert cost(dW + 0.1 * other) > cost(dW)


def test_equality_large_batch_form_matches_small_form(gen):
    # n ≥ d_in with α > 0 uses the d_in × d_in form; it must equal the n × n formula.
    W, K, V, C0, _ = random_problem(gen, d_in=6, n=8)
    alpha, lam = 0.3, 2.0
    C = lam * C0
    D = K.T @ torch.linalg.solve(C, K)
    expected = (V - W @ K) @ torch.linalg.solve(D + alpha * torch.eye(8, dtype=D.dtype), torch.linalg.solve(C, K).T)
    dW = Equality(alpha=alpha, mom2_weight=lam)(K, V - W @ K, Preservation(C0))
    assert rel(dW, expected) < 1e-8


def test_equality_duplicate_keys_alpha0_is_a_clear_error(gen):
    W, K, V, C0, _ = random_problem(gen, n=2)
    K = torch.cat([K, K[:, :1]], dim=1)
    V = torch.cat([V, V[:, :1] + 1.0], dim=1)
    with pytest.raises(SingularSystemError, match="duplicate"):
        Equality(alpha=0.0)(K, V - W @ K, Preservation(C0))
    Equality(alpha=0.1)(K, V - W @ K, Preservation(C0))  # the remedy works


@pytest.mark.parametrize("n,m", [(3, 0), (3, 4), (14, 0)])
def test_least_squares_gradient_is_zero(gen, n, m):
    W, K, V, C0, Kp = random_problem(gen, n=n, m=m)
    lam = 0.7
    R = V - W @ K
    dW = LeastSquares(mom2_weight=lam)(K, R, Preservation(C0, Kp))
    A = lam * C0 + (Kp @ Kp.T if Kp is not None else 0)
    # objective tr(ΔW A ΔWᵀ) + ‖ΔW K − R‖²; gradient 2ΔW A + 2(ΔW K − R)Kᵀ
    grad = dW @ A + (dW @ K - R) @ K.T
    assert float(grad.norm()) < 1e-9 * float((R @ K.T).norm())


def test_least_squares_equals_stacked_lstsq(gen):
    W, K, V, C0, _ = random_problem(gen, n=4)
    lam = 2.5
    R = V - W @ K
    # ‖ΔW K − R‖² + λ‖ΔW L‖² with C0 = L Lᵀ  ⇔  ΔW [K, √λ L] ≈ [R, 0]
    L = torch.linalg.cholesky(C0)
    A = torch.cat([K, lam**0.5 * L], dim=1)  # (d_in, n + d_in)
    B = torch.cat([R, torch.zeros(R.shape[0], L.shape[1], dtype=R.dtype)], dim=1)
    expected = torch.linalg.lstsq(A.T, B.T).solution.T
    dW = LeastSquares(mom2_weight=lam)(K, R, Preservation(C0))
    assert rel(dW, expected) < 1e-9


def test_least_squares_tends_to_equality_as_lambda_vanishes(gen):
    W, K, V, C0, _ = random_problem(gen, n=3)
    R = V - W @ K
    eq = Equality(alpha=0.0)(K, R, Preservation(C0))
    errs = [rel(LeastSquares(mom2_weight=lam)(K, R, Preservation(C0)), eq) for lam in (1e-2, 1e-4, 1e-6)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-4


@pytest.mark.parametrize("n", [2, 7])
def test_emmet_with_alpha_is_memit_with_lambda_alpha_times_lambda(gen, n):
    """R (KᵀC⁻¹K + αI)⁻¹ KᵀC⁻¹ with C = λC0 equals R Kᵀ(λ'C0 + KKᵀ)⁻¹ with λ' = αλ (the unified
    framework's observation; the sequential benchmark met it as identical EMMET and MEMIT runs)."""
    W, K, V, C0, _ = random_problem(gen, n=n)
    R = V - W @ K
    emmet = Equality(alpha=0.01, mom2_weight=1000.0)(K, R, Preservation(C0))
    memit = LeastSquares(mom2_weight=10.0)(K, R, Preservation(C0))
    assert rel(emmet, memit) < 1e-9
    assert rel(Equality(alpha=0.02, mom2_weight=1000.0)(K, R, Preservation(C0)), memit) > 1e-3


def test_null_space_leaves_preserved_subspace_untouched(gen):
    W, K, V, C0, Kp = random_problem(gen, d_in=12, n=3, m=2)
    # give C0 a clear small-eigenvalue subspace of dimension 5
    evals, evecs = torch.linalg.eigh(C0)
    evals = torch.cat([torch.full((5,), 1e-6, dtype=evals.dtype), evals[5:]])
    C0 = evecs @ torch.diag(evals) @ evecs.T
    pres = Preservation(C0, Kp)
    U0 = null_basis(pres, 1e-3)
    assert U0.shape[1] == 5
    dW = NullSpace(null_threshold=1e-3, threshold_scale="relative", beta=0.5)(K, V - W @ K, pres)
    U_keep = evecs[:, 5:]
    assert float((dW @ U_keep).abs().max()) < 1e-10 * float(dW.abs().max())
    # and it is the AlphaEdit formula R Kᵀ P (K Kᵀ P + Kp Kpᵀ P + β I)⁻¹ written directly
    P = U0 @ U0.T
    M = K @ K.T @ P + Kp @ Kp.T @ P + 0.5 * torch.eye(12, dtype=P.dtype)
    expected = torch.linalg.solve(M.T, ((V - W @ K) @ K.T @ P).T).T
    assert rel(dW, expected) < 1e-9


@pytest.mark.parametrize("n", [2, 20])  # n + m < r (small form) and n ≥ r (r × r form)
def test_null_space_without_preserved_subspace_is_ridge(gen, n):
    W, K, V, C0, _ = random_problem(gen, d_in=10, n=n)
    R = V - W @ K
    dW = NullSpace(null_threshold=2.0, threshold_scale="relative", beta=0.3)(K, R, Preservation(C0))  # every direction is "null"
    ridge = torch.linalg.solve(K @ K.T + 0.3 * torch.eye(10, dtype=K.dtype), K @ R.T).T
    assert rel(dW, ridge) < 1e-9


def test_nan_inputs_are_rejected(gen):
    W, K, V, C0, _ = random_problem(gen)
    K[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        Equality()(K, V, Preservation(C0))


def test_registry_lists_algorithms_and_rejects_unknown():
    assert {"rome", "emmet", "memit", "alphaedit"} <= set(OBJECTIVES.names())
    assert OBJECTIVES.get("rome").one_at_a_time and not OBJECTIVES.get("emmet").one_at_a_time
    assert OBJECTIVES.get("rome").build().config.alpha == 0.0
    with pytest.raises(UnknownNameError, match="alphaedit.*emmet.*memit.*rome"):
        OBJECTIVES.get("grace")


def test_ridge_makes_a_singular_C0_solvable_and_keeps_the_constraint(gen):
    """Dead MLP units never fire, so C0 has zero rows/columns: without a ridge the equality
    objective refuses it; with one, the constraint still holds exactly (it does not depend on C)."""
    W, K, V, C0, _ = random_problem(gen, d_in=10, n=3)
    C0[:, :2] = 0
    C0[:2, :] = 0
    K[:2] = 0  # keys of dead units are zero too
    R = V - W @ K
    with pytest.raises(SingularSystemError):
        Equality(alpha=0.0)(K, R, Preservation(C0.clone()))
    pres = Preservation(C0.clone(), ridge=1e-6)
    dW = Equality(alpha=0.0)(K, R, pres)
    assert torch.allclose(dW @ K, R, atol=1e-9)
    assert torch.linalg.eigvalsh(pres.C0).min() > 0
    with pytest.raises(ValueError, match="ridge"):
        Preservation(C0.clone(), ridge=-1.0)


@pytest.mark.parametrize("name", ["emmet", "memit", "alphaedit", "rome"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_preservation_cost_equals_the_direct_trace(gen, name, n):
    """The low-rank form tr(RᵀR · G C0 Gᵀ) equals √tr(ΔW C0 ΔWᵀ) for every solver's ΔW (n < d_out),
    and the direct product is used when R cannot give ΔW back (n ≥ d_out, or repeated residuals)."""
    W, K, V, C0, Kp = random_problem(gen, d_out=6, d_in=10, n=n, m=2)
    R = V - W @ K
    hp = {"alphaedit": dict(null_threshold=0.5, threshold_scale="relative")}.get(name, {})
    dW = OBJECTIVES.get(name).build(**hp)(K, R, Preservation(C0, Kp))
    direct = float(torch.trace(dW @ C0 @ dW.T).sqrt())
    assert preservation_cost(dW, R, C0) == pytest.approx(direct, rel=1e-10)
    if n > 1:
        R2 = torch.cat([R[:, :1], R[:, :1], R[:, 2:]], 1)  # rank-deficient: RᵀR singular
        dW2 = OBJECTIVES.get(name).build(**hp)(K, R2, Preservation(C0, Kp))
        assert preservation_cost(dW2, R2, C0) == pytest.approx(float(torch.trace(dW2 @ C0 @ dW2.T).sqrt()), rel=1e-10)


def test_emmet_single_edit_is_rome_exact_constraint(gen):
    """unified-model-editing adds αI to D only for n > 1: one EMMET edit meets its constraint exactly."""
    W, K, V, C0, _ = random_problem(gen, n=1)
    dW = OBJECTIVES.get("emmet").build(alpha=0.5)(K, V - W @ K, Preservation(C0))
    assert rel((W + dW) @ K, V) < 1e-12
    assert rel(dW, Equality(alpha=0.0)(K, V - W @ K, Preservation(C0))) < 1e-12
    W, K, V, C0, _ = random_problem(gen, n=3)  # n > 1: α regularises, the constraint is no longer exact
    dW = OBJECTIVES.get("emmet").build(alpha=0.5)(K, V - W @ K, Preservation(C0))
    assert rel((W + dW) @ K, V) > 1e-3


@pytest.mark.parametrize("n", [1, 3])
def test_constraint_keys_meet_the_constraint_there_with_the_averaged_direction(gen, n):
    """ROME's compute_v: ΔW = r (C⁻¹k̄)ᵀ / (k_cᵀ C⁻¹ k̄); in general ΔW Kc = R exactly, rows of ΔW in span(C⁻¹K)."""
    W, K, V, C0, _ = random_problem(gen, n=n)
    Kc = K + 0.3 * torch.randn(K.shape, generator=gen, dtype=K.dtype)
    R = V - W @ K
    dW = Equality(alpha=0.0, mom2_weight=7.0)(K, R, Preservation(C0), Kc)
    assert rel(dW @ Kc, R) < 1e-10
    CinvK = torch.linalg.solve(C0, K)
    assert rel(dW @ CinvK @ torch.linalg.pinv(CinvK), dW) < 1e-10  # rows lie in span(C⁻¹K)
    if n == 1:
        u = CinvK[:, 0]
        assert rel(dW, torch.outer(R[:, 0], u) / (Kc[:, 0] @ u)) < 1e-12
    with pytest.raises(ValueError, match="no separate constraint keys"):
        LeastSquares(mom2_weight=1.0)(K, R, Preservation(C0), Kc)


def test_null_threshold_is_absolute_by_default(gen):
    """AlphaEdit's nullspace_threshold is compared with C0's singular values themselves."""
    _, _, _, C0, _ = random_problem(gen)
    ev = torch.linalg.eigvalsh(C0)
    t = float(ev[3:5].mean())
    assert null_basis(Preservation(C0), t).shape[1] == 4
    assert null_basis(Preservation(C0), t / float(ev.max()), "relative").shape[1] == 4
