"""The pipeline, top to bottom:

    requests ─► validate (nothing touched yet) ─► key statistics C0 per layer
             ─► target values Z at the last edited layer (all requests optimised together)
             ─► strategy.run(model access, layers, Z, solve = objective(K, R, C0, K_p))
             ─► Edit (applied; undo() restores the weights bit for bit)

`Editor(objective=…, strategy=…)` pairs any registered objective with any registered strategy
(`distribute=True/False` is the older spelling of strategy="spread"/"single").
An objective registered `one_at_a_time` (ROME) gets the requests one by one, each edit on top of
the previous. Any failure after the first write restores every weight before the error leaves.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import torch

from .architectures import add_delta, architecture_of, as_math, check_layers, num_layers, weight_param
from .config import EditorConfig, build_config
from .context import context_templates
from .distribution import STRATEGIES, LayerUpdate
from .edit import Edit, applied_edits
from .hooks import frozen
from .keys import ModelAccess
from .linalg import NonFiniteError
from .models import load_model, resolve
from .objectives import OBJECTIVES, Preservation, preservation_cost
from .requests import EditRequest
from .stats import layer_stats
from .target_cache import TargetCache
from .targets import compute_targets
from .tokens import locate_subject, target_ids
from .transforms import build as build_transform

log = logging.getLogger(__name__)


HPARAMS = "hparams.json"


class EditDidNotTakeError(ValueError):
    """The targets moved nothing: the edit would change no prediction it was asked to."""


def default_layers(model) -> list[int]:
    """The model's shipped default (config attribute `editkit_layers`), else MEMIT's habit of a
    short range ending a third of the way up: ⌊n/3⌋−2 … ⌊n/3⌋ clipped to the model."""
    shipped = getattr(model.config, "editkit_layers", None)
    if shipped:
        return list(shipped)
    n = num_layers(model)
    top = max(0, min(n - 1, n // 3))
    return list(range(max(0, top - 2), top + 1))


def _hparams_path(model_or_path) -> Path:
    folder = Path(getattr(getattr(model_or_path, "config", None), "_name_or_path", "") or resolve(str(model_or_path)))
    return folder / HPARAMS


def shipped_hparams(model_or_path) -> dict | None:
    """The `hparams.json` a model ships beside its weights, or None."""
    path = _hparams_path(model_or_path)
    return json.loads(path.read_text()) if path.is_file() else None


class Editor:
    """Editor(objective="emmet", strategy="spread", layers=[3, 4, 5], alpha=0.1, steps=20, …).

    Keyword arguments go to the group that declares them (see editkit.config); the rest are the
    objective's hyperparameters, validated by its config class."""

    def __init__(self, objective: str = "emmet", distribute: bool | None = None, config: EditorConfig | None = None, **kwargs):
        if config is None:
            config = build_config(objective=objective, **({} if distribute is None else {"distribute": distribute}), **kwargs)
        self.config = config
        entry = OBJECTIVES.get(self.config.objective)
        self.reference = entry.reference
        self.objective = entry.build(**self.config.hparams)
        self.one_at_a_time = entry.one_at_a_time
        self.strategy = STRATEGIES.get(self.config.strategy)()
        self.transforms = [build_transform(t) for t in self.config.transforms]
        self.auto_choice: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → layers="auto"'s choice and its trace
        self.target_cache: TargetCache | None = None  # set one to share target values between editors (editkit.target_cache)
        self._stats: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → {layer: Preservation}
        self._templates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → [str]

    @classmethod
    def for_model(cls, model_or_path, objective: str = "emmet", distribute: bool | None = None, **overrides) -> "Editor":
        """An Editor with the hyperparameters a model ships in `hparams.json` beside its weights
        (layers; target and statistics settings; per-objective λ, α, …), the way ROME/MEMIT ship
        hparams per model. Keyword arguments override them."""
        hp = shipped_hparams(model_or_path)
        if hp is None:
            raise FileNotFoundError(f"{_hparams_path(model_or_path)} does not exist: this model ships no default hyperparameters; pass them to Editor(...)")
        kwargs = {"layers": hp.get("layers"), **hp.get("target", {}), **hp.get("stats", {})}
        strategy = overrides.get("strategy") or ("spread" if distribute else "single")  # a conflict of the two is refused below
        for key in (objective, f"{objective}+{strategy}"):  # per objective, then per objective × strategy
            kwargs.update(hp.get("objectives", {}).get(key, {}))
        kwargs.update(overrides)
        return cls(objective=objective, distribute=distribute, **kwargs)

    def __repr__(self) -> str:
        return f"Editor(objective={self.config.objective!r}, strategy={self.config.strategy!r}, layers={self.config.layers})"

    # ------------------------------------------------------------ public
    def edit(self, model, tok=None, requests: Iterable[EditRequest | dict] = ()) -> Edit:
        """Apply `requests` to `model` and return the applied Edit."""
        if tok is None:
            model, tok = load_model(model)
        requests = self.validate(model, tok, requests)
        layers = self.layers(model, tok)
        written = self.strategy.writes(layers)
        pres = self._preservation(model, tok, written)
        templates = self._context(model, tok)
        edit = Edit([], self.config.model_dump(mode="json"), [r.model_dump() for r in requests])
        info = edit.info
        if model in self.auto_choice:
            info["auto_layers"] = self.auto_choice[model]
        info.update(reference=self.reference, target_losses=[], target_steps=[], target_nll_initial=[], target_nll=[], took=[],
                    preservation=[], delta_norm=[], seconds={"targets": 0.0, "distribute": 0.0})
        edit._begin(model, written)
        try:
            with frozen(model):
                batches = [[r] for r in requests] if self.one_at_a_time else [requests]
                for batch in batches:
                    t0 = time.perf_counter()
                    args = (model, tok, batch, layers[-1], templates, self.config.target)
                    show = self.config.progress and len(batch) > 1
                    tg = compute_targets(*args, progress=show) if self.target_cache is None else self.target_cache.get(compute_targets, *args, progress=show)
                    self._check_took(tg, layers[-1], info)
                    t1 = time.perf_counter()
                    access = ModelAccess(model, tok, batch, templates, fact_token=self.config.target.fact_token)
                    updates = self.strategy.run(access, layers, tg.Z, self._solver(model, pres, edit, access))
                    info["seconds"]["targets"] += t1 - t0
                    info["seconds"]["distribute"] += time.perf_counter() - t1
                    info["target_losses"] += tg.losses.tolist()
                    info["target_steps"] += tg.steps.tolist()
                    edit.updates += updates
                if self.transforms:
                    self._transform(model, edit, written, pres)
        except BaseException:
            edit._restore()
            raise
        edit._seal(model)
        log.info("edited %d request(s) at layers %s with %s", len(requests), written, self)
        return edit

    @contextmanager
    def applied(self, model, tok, requests) -> Iterator[Edit]:
        """The edit is applied inside the block and undone on exit, also on exceptions."""
        edit = self.edit(model, tok, requests)
        try:
            yield edit
        finally:
            if edit.applied:
                edit.undo(force=True)

    def prepare(self, model, tok) -> "Editor":
        """Compute now what the editor otherwise computes at its first edit of `model` and keeps:
        the context templates and the key statistics of the layers it writes. Call it before
        re-applying saved edits to resume a sequence, so both come from the unedited model as
        they did in the uninterrupted run."""
        self._preservation(model, tok, self.strategy.writes(self.layers(model, tok)))
        self._context(model, tok)
        return self

    def layers(self, model, tok=None) -> list[int]:
        """The configured layers; the model's default range; or, with layers="auto", the range a
        causal trace picks (computed once per model, kept in `self.auto_choice[model]`)."""
        if self.config.layers == "auto":
            if model not in self.auto_choice:
                if tok is None:
                    raise ValueError("layers='auto' traces the model: pass its tokenizer (editor.layers(model, tok))")
                from .auto_layers import choose_layers

                n = self.config.auto_layers or len(default_layers(model))
                with frozen(model):
                    self.auto_choice[model] = choose_layers(model, tok, n)
            layers = list(self.auto_choice[model]["layers"])
        else:
            layers = list(self.config.layers) if self.config.layers is not None else default_layers(model)
        check_layers(model, layers)
        return layers

    def validate(self, model, tok, requests) -> list[EditRequest]:
        """Every check that can fail before a weight is touched."""
        architecture_of(model)
        self.layers(model, tok)
        requests = [r if isinstance(r, EditRequest) else EditRequest(**r) for r in requests]
        if not requests:
            raise ValueError("no requests given: pass at least one EditRequest")
        for r in requests:
            locate_subject(tok, r.prompt, r.subject)
            locate_subject(tok, self.config.target.kl_prompt, r.subject)
            target_ids(tok, r.target_new)
        return requests

    # ------------------------------------------------------------ internals
    def _check_took(self, tg, layer: int, info: dict) -> None:
        """An edit must never look like success when its targets moved nothing. δ that cannot
        reach the target tokens leaves their NLL bit-identical for every request: an error,
        before anything is written. A target NLL that did not fall (and did not start below
        early_stop) is a loud warning; `info["took"]` says, per request, whether it fell."""
        t = self.config.target
        if not bool(torch.isfinite(tg.nll0).all()):
            raise NonFiniteError(
                f"the model's target NLL is not finite before the edit ({[round(x, 4) for x in tg.nll0.tolist()]}): its "
                "weights are broken (NaN/Inf, e.g. after earlier edits diverged); nothing was written. Undo earlier edits "
                "or reload the model."
            )
        took = ((tg.nll < tg.nll0 - 1e-6 * (1 + tg.nll0.abs())) | (tg.nll0 < t.early_stop)).tolist()
        info["target_nll_initial"] += tg.nll0.tolist()
        info["target_nll"] += tg.nll.tolist()
        info["took"] += took
        if torch.equal(tg.nll, tg.nll0) and not any(took):
            raise EditDidNotTakeError(
                f"the edit cannot take: δ at layer {layer} (fact_token={t.fact_token!r}) does not reach the target "
                f"tokens, their NLL stayed exactly {[round(x, 4) for x in tg.nll0.tolist()]}; nothing was written. "
                "This happens at the model's top block with the subject's token, or when the target is read "
                "before the edit token: edit lower layers, or put δ where the model recalls (fact_token='last' "
                "for a model that recalls at the prompt's end, as editkit-teach's hparams.json says; Editor.for_model). "
                "After many earlier edits it also means the model has collapsed (saturated outputs give δ no gradient: "
                "target NLLs far above the unedited model's); undo edits or regularise them more."
            )
        if not all(took):
            bad = [i for i, ok in enumerate(took) if not ok]
            log.warning(
                "EDIT DID NOT TAKE for %d of %d request(s) %s: the target NLL did not fall (%s → %s); more steps, a "
                "larger lr or clamp_factor, or other layers may help", len(bad), len(took), bad,
                [round(info["target_nll_initial"][-len(took) + i], 3) for i in bad], [round(info["target_nll"][-len(took) + i], 3) for i in bad],
            )

    def _transform(self, model, edit: Edit, written: list[int], pres: dict[int, Preservation]) -> None:
        """Post-edit transforms (editkit.transforms): per written layer, D' = transform(D, W, W0, C),
        written as one more update D' − D without keys."""
        earlier = [e for e in applied_edits(model) if e is not edit]
        for layer in written:
            mine = [u for u in edit.updates if u.layer == layer]
            if not mine:
                continue
            D = torch.stack([u.delta for u in mine]).sum(0)  # (d_out, d_in)
            W = as_math(model, edit._backup[layer]).to(torch.float64).cpu()
            before = [e for e in earlier if layer in e._backup]
            W0 = as_math(model, before[0]._backup[layer]).to(torch.float64).cpu() if before else W
            raw = [u.delta for e in before for u in e.updates if u.layer == layer and u.keys.shape[1] > 0]
            C = torch.stack(raw).sum(0) if raw else torch.zeros_like(D)
            D2 = D
            for t in self.transforms:
                D2 = t(D2, W, W0, C)
            fix = D2 - D
            add_delta(model, layer, fix)
            edit.updates.append(LayerUpdate(layer, D.new_zeros(D.shape[1], 0), D.new_zeros(D.shape[0], 0), D.new_zeros(D.shape[0], 0), fix))
            edit.info["delta_norm"].append(float(fix.norm()))
            C0 = pres[layer].C0.to(fix.device)
            edit.info["preservation"].append(float(torch.trace(fix @ C0 @ fix.T).clamp_min(0).sqrt()))
            edit.info.setdefault("transformed", []).append({"layer": layer, "norm_before": float(D.norm()), "norm_after": float(D2.norm())})

    def _preservation(self, model, tok, layers: list[int]) -> dict[int, Preservation]:
        cache = self._stats.setdefault(model, {})
        missing = [l for l in layers if l not in cache]
        if missing:
            for l, C0 in layer_stats(model, tok, missing, self.config.stats, self.config.progress).items():
                cache[l] = Preservation(C0.to(weight_param(model, l).device), ridge=self.config.stats.ridge)  # solves run on the layer's device
        return cache

    def _context(self, model, tok) -> list[list[str]]:
        """Template groups: the configured ones, else generated once per model (editkit.context)."""
        t = self.config.target
        if t.templates is not None:
            return t.templates
        if model not in self._templates:
            with frozen(model):
                self._templates[model] = context_templates(model, tok, t.context, t.n_context, t.context_len, self.config.seed)
        return self._templates[model]

    def _earlier_keys(self, model, layer: int, current: Edit) -> torch.Tensor | None:
        if not self.config.keep_edited_keys:
            return None
        ks = [u.keys for e in applied_edits(model) if e is not current for u in e.updates if u.layer == layer]  # any editor's, saved ones re-applied too
        ks += [u.keys for u in current.updates if u.layer == layer]
        return torch.cat(ks, dim=1) if ks else None

    def _solver(self, model, pres: dict[int, Preservation], edit: Edit, access: ModelAccess):
        plain = self.config.constraint_key == "plain"

        def solve(layer: int, K: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
            p = pres[layer].with_keys(self._earlier_keys(model, layer, edit))
            dW = self.objective(K, R, p, access.plain_keys(layer) if plain else None)  # on C0's device
            edit.info["delta_norm"].append(float(dW.norm()))
            edit.info["preservation"].append(preservation_cost(dW, R.to(dW.device, torch.float64), p.C0))
            return dW.cpu()

        return solve


def make_editor(model, objective: str, strategy: str, shipped_defaults: bool = True, **kwargs) -> Editor:
    """Editor.for_model (the model's hparams.json, overridden by kwargs) when the model's folder
    ships one and `shipped_defaults`, else a plain Editor with kwargs."""
    folder = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if shipped_defaults and folder and (Path(folder) / HPARAMS).is_file():
        return Editor.for_model(model, objective=objective, strategy=strategy, **kwargs)
    return Editor(objective=objective, strategy=strategy, **kwargs)
