"""ENCORE (Gupta et al. 2025, "Lifelong Knowledge Editing requires Better Regularization"):
MEMIT's least squares with a norm constraint and the earlier edits' keys, for long sequences.

    ΔW = R Kᵀ (λ_p C0 + λ_n I + Kp Kpᵀ + K Kᵀ)⁻¹        (d_out, d_in)

λ_p = mom2_weight, λ_n = norm_weight (the paper's norm constraint, `update_norm_lambda`), Kp the
keys of every earlier edit at this layer, unscaled (`add_prev_edits`). The solve is the
least-squares one (editkit.objectives.least_squares); what makes ENCORE is its defaults and
conventions: λ_n = 10 and λ_p = 20 000 (hparams/ENCORE/gpt2-xl.json; Llama-3-8B: λ_n = 20,
λ_p = 15 000), earlier keys kept, and MPES early stopping of the δ optimisation
(`mpes_hits`, editkit.targets), which ENCORE's gpt2-xl file sets to 4 (prob_cutoff = −4).
"""

from __future__ import annotations

from .base import register
from .least_squares import LeastSquares


@register(
    "encore",
    mom2_weight=20000.0,
    norm_weight=10.0,
    conventions={"keep_edited_keys": True, "mpes_hits": 4},
    reference="scalable-model-editing/knowledge-editing-regularization: encore/encore_main.py (solve), encore/compute_z.py (MPES); hparams/ENCORE/gpt2-xl.json",
)
class Encore(LeastSquares):
    name = "encore"
