"""Strategies on a fake model whose exact answer is known: a stack of residual maps.

    h_0 = x,   k_l = tanh(A_l h_l)  (d_in, n),   h_{l+1} = h_l + W_l k_l   (d, n)
"""

import pytest
import torch
from fakes import ResidualStack, solver

from editkit.distribution import STRATEGIES
from editkit.registry import UnknownNameError


def test_spread_with_equality_reaches_targets_exactly(gen):
    model = ResidualStack(gen)
    layers = [1, 2, 3]
    Z = model.outputs(3) + torch.randn(6, 3, generator=gen, dtype=torch.float64)
    updates = STRATEGIES.get("spread")().run(model, layers, Z, solver("emmet", alpha=0.0))
    assert [u.layer for u in updates] == layers
    assert float((model.outputs(3) - Z).abs().max()) < 1e-10
    for u in updates:  # each layer's solver met its own constraint
        assert float((u.delta @ u.keys - u.residual).abs().max()) < 1e-10


def test_spread_gives_each_layer_its_share(gen):
    model = ResidualStack(gen, coupled=False)  # keys independent of edits: shares are equal
    layers = [0, 2, 4]
    H0 = model.outputs(4)
    Z = H0 + torch.randn(6, 3, generator=gen, dtype=torch.float64)
    updates = STRATEGIES.get("spread")().run(model, layers, Z, solver("emmet", alpha=0.0))
    for u in updates:
        assert torch.allclose(u.residual, (Z - H0) / 3, atol=1e-12)
        assert torch.allclose(u.values, (model.W[u.layer] - u.delta) @ u.keys + u.residual)
    assert float((model.outputs(4) - Z).abs().max()) < 1e-10


def test_single_writes_everything_at_the_last_layer(gen):
    model = ResidualStack(gen)
    W_before = [w.clone() for w in model.W]
    Z = model.outputs(3) + 1.0
    updates = STRATEGIES.get("single")().run(model, [1, 3], Z, solver("emmet", alpha=0.0))
    assert [u.layer for u in updates] == [3]
    assert torch.equal(model.W[1], W_before[1])
    assert float((model.outputs(3) - Z).abs().max()) < 1e-10


@pytest.mark.parametrize("objective", ["rome", "emmet", "memit", "alphaedit"])
@pytest.mark.parametrize("strategy", ["single", "spread"])
def test_every_pair_moves_outputs_towards_targets(gen, objective, strategy):
    model = ResidualStack(gen)
    H0 = model.outputs(3)
    Z = H0 + torch.randn(6, 3, generator=gen, dtype=torch.float64)
    hp = {"null_threshold": 2.0, "threshold_scale": "relative", "beta": 1.0} if objective == "alphaedit" else {"mom2_weight": 1.0}
    STRATEGIES.get(strategy)().run(model, [1, 2, 3], Z, solver(objective, **hp))
    assert (model.outputs(3) - Z).norm() < 0.5 * (H0 - Z).norm()


def test_strategy_registry():
    assert {"single", "spread"} <= set(STRATEGIES.names())
    with pytest.raises(UnknownNameError, match="single, spread"):
        STRATEGIES.get("everywhere")


def test_auto_layers_take_the_window_with_the_largest_effect():
    from editkit.auto_layers import best_window

    e = torch.tensor([0.01, 0.02, 0.30, 0.25, 0.28, 0.02, float("nan")])
    assert best_window(e, 3) == [2, 3, 4]
    assert best_window(e, 1) == [2]
    assert best_window(torch.zeros(4), 2) == [0, 1]  # ties: the lowest window
    with pytest.raises(ValueError, match="cannot choose 5"):
        best_window(torch.zeros(4), 5)


def test_shared_prefix_is_the_common_start_capped_at_the_edit_position():
    from editkit.tokens import shared_prefix

    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 7]], cap=10) == 2
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 4]], cap=3) == 3
    assert shared_prefix([[5, 2], [1, 2]], cap=2) == 0
    assert shared_prefix([[1, 2, 3]], cap=5) == 3
