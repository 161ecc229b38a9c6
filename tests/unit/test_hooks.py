"""Temporary model state restores what it found, also when the block raises."""

import pytest
import torch

from editkit.hooks import eval_mode, frozen


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fail", [True, False])
def test_eval_mode_and_frozen_restore_the_mode_and_the_flags(training, fail):
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5), torch.nn.Linear(2, 1)).train(training)
    m[2].weight.requires_grad_(False)
    flags = [p.requires_grad for p in m.parameters()]
    for ctx in (eval_mode, frozen):
        try:
            with ctx(m):
                assert not m.training and not m[1].training
                if ctx is frozen:
                    assert not any(p.requires_grad for p in m.parameters())
                if fail:
                    raise KeyError("inside")
        except KeyError:
            assert fail
        assert m.training == training and m[1].training == training
        assert [p.requires_grad for p in m.parameters()] == flags
