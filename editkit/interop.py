"""The field's files: key statistics and hyperparameters in the layouts of rome, memit,
AlphaEdit and EasyEdit, read and written by editkit.

Key statistics (rome/layer_stats.py, used by all of them):

    <stats_dir>/<model>/<dataset>_stats/<layer module>_<dtype>_mom2_<n>.npz
        mom2.mom2   (d_in, d_in)  Σ_t k_t k_tᵀ, the SUM over tokens, in <dtype>
        mom2.count  ()            the number of tokens;   C0 = mom2.mom2 / mom2.count
        mom2.constructor, sample_size (n, the number of texts)

    `StatsConfig(corpus="npz:<dir>")` reads C0 of each layer from the file named for its module
    anywhere below <dir> (no corpus pass); `write_mom2_npz` writes editkit's C0 in that layout
    (with `sample_size`, which their loader requires), for `editkit stats --export-npz DIR`.

Hyperparameters (hparams/<ALG>/<model>.json, EasyEdit's YAML): `from_reference_hparams` maps
their keys to an Editor's keyword arguments and says which keys it ignores and why;
`to_reference_hparams` writes an editor's settings back under their names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .architectures import architecture_of
from .objectives import OBJECTIVES

# ---------------------------------------------------------------- key statistics


def npz_name(model, layer: int, dtype: str = "float32", n: int | None = 100_000) -> str:
    return f"{architecture_of(model).proj.format(layer)}_{dtype}_mom2" + (f"_{n}" if n is not None else "") + ".npz"


def read_mom2_npz(path: str | Path) -> tuple[torch.Tensor, int]:
    """(C0 float64 (d_in, d_in), token count) from a rome-layout statistics file."""
    with np.load(path, allow_pickle=False) as z:
        if "mom2.mom2" not in z or "mom2.count" not in z:
            raise ValueError(f"{path} is not a rome/memit key-statistics file: it lacks mom2.mom2 / mom2.count (has {sorted(z.keys())})")
        total = torch.from_numpy(z["mom2.mom2"].astype(np.float64))
        count = int(z["mom2.count"])
    if count <= 0:
        raise ValueError(f"{path}: mom2.count is {count}")
    return total / count, count


def write_mom2_npz(path: str | Path, C0: torch.Tensor, count: int, sample_size: int | None, dtype: str = "float32") -> Path:
    """C0 (a mean) as rome's SecondMoment state: the sum C0·count in `dtype`, the count, and sample_size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = (C0.to(torch.float64) * count).numpy().astype(dtype)
    np.savez(path, **{"mom2.mom2": total, "mom2.count": np.array(count), "mom2.constructor": np.array("util.runningstats.SecondMoment()"),
                      "sample_size": np.array(sample_size if sample_size is not None else -1)})
    return path


def find_npz(folder: str | Path, model, layer: int) -> Path:
    """The statistics file of `layer` below `folder` (its name starts with the layer's module path)."""
    module = architecture_of(model).proj.format(layer)
    found = sorted(p for p in Path(folder).rglob(f"{module}_*_mom2*.npz"))
    if not found:
        raise FileNotFoundError(f"no key-statistics file for {module} (layer {layer}) below {folder}: expected {module}_<dtype>_mom2_<n>.npz")
    if len(found) > 1:
        raise ValueError(f"several key-statistics files for {module} below {folder}: {[str(p) for p in found]}; point corpus='npz:…' at one folder")
    return found[0]


# ---------------------------------------------------------------- hyperparameters
OBJECTIVE_OF = {"ROME": "rome", "MEMIT": "memit", "EMMET": "emmet", "AlphaEdit": "alphaedit", "ENCORE": "encore"}
ALG_OF = {v: k for k, v in OBJECTIVE_OF.items()}
# their key → editkit's keyword, for every algorithm
COMMON = {"layers": "layers", "fact_token": "fact_token", "v_num_grad_steps": "steps", "v_lr": "lr", "v_weight_decay": "weight_decay",
          "clamp_norm_factor": "clamp_factor", "kl_factor": "kl_factor", "mom2_dtype": "dtype", "mom2_n_samples": "n_docs"}
PER_OBJECTIVE = {
    "memit": {"mom2_update_weight": "mom2_weight"},
    "encore": {"mom2_update_weight": "mom2_weight", "update_norm_lambda": "norm_weight"},
    "emmet": {"mom2_update_weight": "mom2_weight", "emmet_lambda": "alpha"},
    "rome": {},
    "alphaedit": {"nullspace_threshold": "null_threshold", "L2": "beta"},
}
NOT_READ = {"alphaedit": {"mom2_update_weight": "AlphaEdit's update does not read it (C0 enters through the projection)"}}
# keys editkit takes from elsewhere: the model's architecture table, its own defaults, or the environment
IGNORED = {
    "alg_name": "given as the objective", "model_name": "the model is loaded separately", "device": "the model's own device",
    "stats_dir": "the statistics cache ($EDITKIT_CACHE) or corpus='npz:…'", "layer_selection": "not read by the originals either",
    "v_loss_layer": "the loss is always read at the model's top, as v_loss_layer = the last block does",
    "rewrite_module_tmp": "the architecture table", "layer_module_tmp": "the architecture table", "mlp_module_tmp": "the architecture table",
    "attn_module_tmp": "the architecture table", "ln_f_module": "the architecture table", "lm_head_module": "the architecture table",
    "mom2_dataset": "the corpus is named separately (corpus=…); 'wikipedia' is the hub dump they load",
    "mom2_adjustment": "always on (C0⁻¹ is part of every objective)", "max_length": "EasyEdit's evaluation setting",
    "batch_size": "EasyEdit's evaluation setting", "model_parallel": "use load_model(device_map=…)", "fp16": "the model's own dtype",
    "calculate_objective_value": "diagnostics of unified-model-editing", "P_loc": "the projection is computed from C0",
    "sequential": "every editor keeps going on the same model", "use_gd": "ENCORE's switch, off in its configs",
}


def from_reference_hparams(source: str | Path | dict, objective: str | None = None) -> tuple[str, dict, dict]:
    """(objective, Editor keyword arguments, {ignored key: why}) from a rome/memit/EMMET/AlphaEdit/
    ENCORE json or an EasyEdit yaml (path or dict)."""
    if isinstance(source, dict):
        hp = dict(source)
    else:
        text = Path(source).read_text()
        if str(source).endswith((".yaml", ".yml")):
            import yaml

            hp = yaml.safe_load(text)
        else:
            hp = json.loads(text)
    alg = hp.get("alg_name")
    objective = objective or OBJECTIVE_OF.get(alg or "")
    if objective is None:
        raise ValueError(f"which algorithm? alg_name is {alg!r}; pass objective= (one of {sorted(PER_OBJECTIVE)})")
    if objective not in PER_OBJECTIVE:
        raise ValueError(f"no hparams mapping for objective {objective!r}; known: {sorted(PER_OBJECTIVE)}")
    names = {**COMMON, **PER_OBJECTIVE[objective]}
    kwargs, ignored = {}, {}
    for key, value in hp.items():
        if key in names:
            kwargs[names[key]] = float(value) if isinstance(value, str) and key not in ("fact_token", "mom2_dtype") else value
        elif key in NOT_READ.get(objective, {}):
            ignored[key] = NOT_READ[objective][key]
        elif key in IGNORED or key in ("alg_name",):
            ignored[key] = IGNORED.get(key, "")
        elif key == "context_template_length_params":
            if [list(x) for x in value] != [[5, 10], [10, 10]]:
                raise ValueError(f"context_template_length_params {value}: editkit's 'rome' context is [[5, 10], [10, 10]]; "
                                 "give templates= explicitly for others")
            kwargs["context"] = "rome"
        elif key == "prob_cutoff":
            if value > 0:
                raise ValueError(f"prob_cutoff {value} > 0 (stop at a mean probability) is not supported; MPES is prob_cutoff < 0")
            kwargs["mpes_hits"] = int(-value)
        elif key == "add_prev_edits":
            kwargs["keep_edited_keys"] = bool(value)
        elif key in ("update_norm_lambda", "emmet_lambda", "norm_control") and not value:
            ignored[key] = "0, editkit's default for this objective"
        else:
            raise ValueError(f"hparams key {key}={value!r} has no editkit setting for {objective}; remove it or set the equivalent by hand")
    if hp.get("mom2_adjustment") is False:
        raise ValueError("mom2_adjustment=false (ROME without C0⁻¹) is not an editkit objective")
    if "n_docs" in kwargs:
        kwargs.update(recipe="original", n_docs=int(kwargs["n_docs"]))
    if "layers" in kwargs:
        kwargs["layers"] = [int(x) for x in kwargs["layers"]]
    return objective, kwargs, ignored


def to_reference_hparams(config, model=None) -> dict:
    """An EditorConfig under the originals' key names (module templates from `model`'s
    architecture when given)."""
    t, s = config.target, config.stats
    out = {"alg_name": ALG_OF.get(config.objective, config.objective), "layers": config.layers, "fact_token": t.fact_token,
           "v_num_grad_steps": t.steps, "v_lr": t.lr, "v_weight_decay": t.weight_decay, "clamp_norm_factor": t.clamp_factor,
           "kl_factor": t.kl_factor, "mom2_adjustment": True, "mom2_dataset": "wikipedia" if s.corpus == "wikipedia" else s.corpus,
           "mom2_n_samples": s.n_docs if s.n_docs is not None else s.n_tokens, "mom2_dtype": s.dtype}
    solver = OBJECTIVES.get(config.objective).build(**config.hparams).config  # with the objective's defaults
    for theirs, mine in PER_OBJECTIVE.get(config.objective, {}).items():
        out[theirs] = getattr(solver, mine)
    if t.mpes_hits:
        out["prob_cutoff"] = -t.mpes_hits
    if config.keep_edited_keys:
        out["add_prev_edits"] = True
    if t.context == "rome":
        out["context_template_length_params"] = [[5, 10], [10, 10]]
    if model is not None:
        a = architecture_of(model)
        n = len(model.get_submodule(a.blocks))
        out.update(rewrite_module_tmp=a.proj, layer_module_tmp=a.blocks + ".{}", mlp_module_tmp=a.mlp, attn_module_tmp=a.attn,
                   ln_f_module=a.final_norm, lm_head_module=a.unembed, v_loss_layer=n - 1)
    return out
