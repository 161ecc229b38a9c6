"""Lifelong-editing plug-ins as pure math: PMET's square-root spread on a fake model, ENCORE's
solve against its closed form, and the RECT and PRUNE transforms against their definitions."""

import math

import pytest
import torch
from fakes import ResidualStack, solver

from editkit.distribution import STRATEGIES
from editkit.objectives import OBJECTIVES, Preservation
from editkit.transforms import build


def rel(a, b):
    return float((a - b).norm() / b.norm())


# ---------------------------------------------------------------- strategies
def test_pmet_gives_each_layer_a_square_root_share(gen):
    model = ResidualStack(gen, coupled=False)  # keys independent of edits: each share is exact
    layers = [0, 2, 4]
    E = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    Z = model.outputs(4) + E
    updates = STRATEGIES.get("pmet")().run(model, layers, Z, solver("emmet", alpha=0.0))
    left = E.clone()
    for j, u in enumerate(updates):
        share = left / math.sqrt(len(layers) - j)  # R_j = (Z − H) / √(L − j + 1), 1-based j
        assert torch.allclose(u.residual, share, atol=1e-12)
        left = left - share
    assert float((model.outputs(4) - Z).abs().max()) < 1e-10  # the last layer takes the rest


def test_strategies_state_the_layers_they_write():
    assert STRATEGIES.get("single")().writes([1, 2, 3]) == [3]
    assert STRATEGIES.get("spread")().writes([1, 2, 3]) == [1, 2, 3]
    assert STRATEGIES.get("pmet")().writes([1, 2, 3]) == [1, 2, 3]


# ---------------------------------------------------------------- ENCORE
@pytest.mark.parametrize("n", [2, 9])  # the push-through form (2n < d_in) and the d_in × d_in one
def test_encore_solve_is_its_definition(gen, n):
    d_in, d_out, m = 12, 5, 4
    f64 = dict(generator=gen, dtype=torch.float64)
    X = torch.randn(d_in, 40, **f64)
    C0, Kp = X @ X.T / 40, torch.randn(d_in, m, **f64)
    K, R = torch.randn(d_in, n, **f64), torch.randn(d_out, n, **f64)
    lam, lam_n = 3.0, 0.7
    obj = OBJECTIVES.get("encore").build(mom2_weight=lam, norm_weight=lam_n)
    want = R @ K.T @ torch.linalg.inv(lam * C0 + lam_n * torch.eye(d_in, dtype=torch.float64) + Kp @ Kp.T + K @ K.T)
    assert rel(obj(K, R, Preservation(C0, Kp)), want) < 1e-10
    # λ_n = 0 is MEMIT's solve
    memit = OBJECTIVES.get("memit").build(mom2_weight=lam)
    assert rel(OBJECTIVES.get("encore").build(mom2_weight=lam, norm_weight=0.0)(K, R, Preservation(C0, Kp)), memit(K, R, Preservation(C0, Kp))) < 1e-12


# ---------------------------------------------------------------- transforms
def test_rect_keeps_the_largest_relative_changes(gen):
    W = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    D = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    out = build({"name": "rect", "keep": 0.4})(D, W, W, torch.zeros_like(D))
    kept = out != 0
    assert int(kept.sum()) == math.ceil(0.4 * 77)
    assert torch.equal(out[kept], D[kept])  # kept entries unchanged
    rel_change = (D / W).abs()
    assert float(rel_change[kept].min()) >= float(rel_change[~kept].max())


def test_prune_restrains_large_singular_values(gen):
    W0 = torch.randn(8, 10, generator=gen, dtype=torch.float64)
    top = float(torch.linalg.matrix_norm(W0, ord=2))
    U, _, Vh = torch.linalg.svd(torch.randn(8, 10, generator=gen, dtype=torch.float64), full_matrices=False)
    S = torch.tensor([5 * top, 2 * top, 0.5 * top, 0.1 * top, 0.01, 0, 0, 0], dtype=torch.float64)
    C = (U[:, :4] * S[:4]) @ Vh[:4]  # earlier edits' raw change
    D = (U[:, 4:] * S[4:]) @ Vh[4:]  # this edit's
    W = W0 + C  # earlier edits were not pruned
    out = build("prune")(D, W, W0, C)
    got = torch.linalg.svdvals(W + out - W0)
    want = torch.tensor([math.log(5) + top, math.log(2) + top, 0.5 * top, 0.1 * top, 0.01], dtype=torch.float64)
    torch.testing.assert_close(got[:5], want, rtol=1e-10, atol=1e-12)
