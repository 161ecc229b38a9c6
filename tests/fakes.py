"""A fake model whose exact answer is known, for strategies: a stack of residual maps.

    h_0 = x,   k_l = tanh(A_l h_l)  (d_in, n),   h_{l+1} = h_l + W_l k_l   (d, n)
"""

import torch

from editkit.objectives import OBJECTIVES, Preservation


class ResidualStack:
    def __init__(self, gen, n_layers=5, d=6, d_in=9, n=3, coupled=True):
        f64 = dict(generator=gen, dtype=torch.float64)
        self.W = [0.3 * torch.randn(d, d_in, **f64) for _ in range(n_layers)]
        self.A = [torch.randn(d_in, d, **f64) for _ in range(n_layers)]
        self.fixed_keys = [torch.randn(d_in, n, **f64) for _ in range(n_layers)]
        self.x = torch.randn(d, n, **f64)
        self.coupled = coupled  # False: keys do not depend on the hidden state

    def _run(self, upto):
        h = self.x
        for l in range(upto + 1):
            k = torch.tanh(self.A[l] @ h) if self.coupled else self.fixed_keys[l]
            if l == upto:
                return k, h + self.W[l] @ k
            h = h + self.W[l] @ k

    def keys(self, layer):
        return self._run(layer)[0]

    def outputs(self, layer):
        return self._run(layer)[1]

    def weight(self, layer):
        return self.W[layer]

    def add(self, layer, delta):
        self.W[layer] = self.W[layer] + delta


def solver(name, **hp):
    objective = OBJECTIVES.get(name).build(**hp)
    C0 = torch.eye(9, dtype=torch.float64)
    return lambda layer, K, R: objective(K, R, Preservation(C0))
