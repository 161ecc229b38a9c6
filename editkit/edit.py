"""An Edit: the exact weight changes an editor made, with everything that explains them.

For each edited layer (in the order they were written) it records
    K  (d_in, n)   the keys the objective was given
    R  (d_out, n)  the residuals it was asked to write,  V = W K + R  (d_out, n)
    ΔW (d_out, d_in) the solution, float64 as computed
plus the objective, strategy and hyperparameters (the EditorConfig) and the requests.

Like a peft adapter it can be applied, undone exactly and saved alone:
  * apply: ΔW is checked for NaN/Inf first, the edited weights are backed up, then W ← W + ΔW
    in the model's dtype (the same routine the editor used, so the result is bit-identical);
  * undo: the backed-up tensors are copied back — bit-identical in fp32, fp16 and bf16 alike;
  * save/load: safetensors for tensors, JSON for the rest; no pickle.

An edit knows the weights it was made for: `info["base"]` holds the model's name and a digest of
every edited W as it was before the edit. `apply` refuses other weights (another model, another
dtype, or a model that already carries this or another edit at those layers) unless forced, so
two loaded copies of one edit cannot stack. Applied edits are tracked per model: undoing an edit
with force=True while later edits on the same layers are still applied restores the weights from
before it and marks those later edits invalid (their backups describe weights that are gone), so
undoing them cannot bring the forced edit's weights back.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .architectures import add_delta, architecture_of, check_layers, read_weight, weight_param
from .distribution import LayerUpdate
from .linalg import check_finite


class EditStateError(RuntimeError):
    pass


_APPLIED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model → its applied edits, in order


def applied_edits(model) -> list["Edit"]:
    """The edits applied to `model` and not undone, oldest first."""
    return list(_APPLIED.get(model, []))


def _fingerprint(w: torch.Tensor) -> str:
    """A digest of a weight's bytes: tells whether anything wrote to it since the edit."""
    return hashlib.blake2b(w.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes(), digest_size=16).hexdigest()


class Edit:
    def __init__(self, updates: list[LayerUpdate], config: dict, requests: list[dict], info: dict | None = None):
        self.updates = updates
        self.config = config
        self.requests = requests
        self.info = info or {}  # target losses, per-update norms, timings …
        self._model_ref = None
        self._backup: dict[int, torch.Tensor] = {}
        self._versions: dict[int, int] = {}
        self._invalid: str | None = None  # why undo is impossible (a forced undo of an earlier edit)

    # ------------------------------------------------------------ state
    @property
    def layers(self) -> list[int]:
        return sorted({u.layer for u in self.updates})

    @property
    def applied(self) -> bool:
        return self._model_ref is not None and self._model_ref() is not None

    def _begin(self, model, layers: list[int] | None = None) -> None:
        """Back up every weight this edit will touch (called before anything is written)."""
        if self.applied:
            raise EditStateError("this edit is already applied; undo it first")
        architecture_of(model)
        self._backup = {l: weight_param(model, l).detach().clone() for l in (layers or self.layers)}
        self._model_ref = weakref.ref(model)
        self._invalid = None
        self.info.setdefault("base", {
            "model": getattr(model.config, "_name_or_path", "") or "",
            "weights": {str(l): _fingerprint(w) for l, w in self._backup.items()},  # digests of W before the edit
        })

    def _seal(self, model) -> None:
        self._versions = {l: _fingerprint(weight_param(model, l)) for l in self._backup}
        _APPLIED.setdefault(model, []).append(self)

    def _restore(self) -> None:
        model = self._model_ref() if self._model_ref else None
        if model is not None:
            with torch.no_grad():
                for l, w in self._backup.items():
                    weight_param(model, l).copy_(w)
        self._detach(model)

    def _detach(self, model) -> None:
        """Forget the model (no longer applied there), without touching its weights."""
        live = _APPLIED.get(model, []) if model is not None else []
        if self in live:
            live.remove(self)
        self._model_ref, self._backup, self._versions = None, {}, {}

    # ------------------------------------------------------------ apply / undo
    def apply(self, model, force: bool = False) -> "Edit":
        """Write this edit into `model` (checked for NaN/Inf, layers, shapes and the base weights
        before anything is written; force=True applies it to other weights than it was made for)."""
        check_layers(model, self.layers)
        base = (self.info.get("base") or {}).get("weights", {})
        other = [l for l in self.layers if str(l) in base and _fingerprint(weight_param(model, l)) != base[str(l)]]
        if other and not force:
            raise EditStateError(
                f"this edit was made for other weights at layers {other} (made on {self.info['base'].get('model') or 'a model'!r}): "
                "another model or dtype, or this model already carries this or another edit there. Undo that edit first, "
                "or pass force=True to apply it anyway."
            )
        for u in self.updates:
            check_finite(u.delta, f"ΔW of layer {u.layer}")
            shape = tuple(read_weight(model, u.layer).shape)  # (d_out, d_in)
            if tuple(u.delta.shape) != shape:
                raise ValueError(f"ΔW of layer {u.layer} is {tuple(u.delta.shape)} but this model's W is {shape}: wrong model")
        self._begin(model)
        try:
            for u in self.updates:
                add_delta(model, u.layer, u.delta)
        except BaseException:
            self._restore()
            raise
        self._seal(model)
        return self

    def undo(self, force: bool = False) -> None:
        """Restore the weights exactly as they were before this edit."""
        if self._invalid:
            raise EditStateError(self._invalid)
        model = self._model_ref() if self._model_ref else None
        if model is None:
            raise EditStateError("this edit is not applied to a live model; nothing to undo")
        changed = [l for l, v in self._versions.items() if _fingerprint(weight_param(model, l)) != v]
        if changed and not force:
            raise EditStateError(
                f"layers {changed} changed after this edit was applied (a later edit?). Undo later "
                "edits first (last applied, first undone), or pass force=True to restore anyway."
            )
        live = _APPLIED.get(model, [])
        later = live[live.index(self) + 1 :] if self in live else []
        for e in later:  # their backups hold weights this undo removes: undoing them would bring this edit back
            if set(e._backup) & set(self._backup):
                e._invalid = (
                    f"this edit can no longer be undone: an earlier edit at layers {sorted(set(e._backup) & set(self._backup))} "
                    "was undone with force=True, which restored the weights from before that edit (and so before this one)."
                )
                e._detach(model)
        self._restore()

    # ------------------------------------------------------------ inspection
    def constraint_errors(self) -> list[dict]:
        """Per update and request: memorisation error ‖ΔW k − r‖ / ‖v‖ (0 for an exact solve)."""
        rows = []
        for j, u in enumerate(self.updates):
            err = (u.delta @ u.keys - u.residual).norm(dim=0) / u.values.norm(dim=0)
            for i, e in enumerate(err.tolist()):
                rows.append({"update": j, "layer": u.layer, "request": i, "error": e})
        return rows

    def report(self) -> str:
        """A readable table: per update, ‖ΔW‖, its preservation cost, max/mean constraint error."""
        losses = self.info.get("target_losses") or []
        lines = [
            f"edit: objective={self.config.get('objective')} "
            f"strategy={self.config.get('strategy') or ('spread' if self.config.get('distribute') else 'single')} "
            f"requests={len(self.requests)}"
            + (f" target loss mean {sum(losses) / len(losses):.4g} (max {max(losses):.4g})" if losses else ""),
            f"{'#':>3} {'layer':>5} {'n':>5} {'|dW|_F':>10} {'|dW|_C0':>10} {'max err':>10} {'mean err':>10}",
        ]
        if self.info.get("reference"):
            lines.insert(1, f"conventions of: {self.info['reference']}")
        if self.config.get("constraint_key") == "plain":
            lines.append("(errors are measured at the averaged keys; with constraint_key='plain' the constraint holds at each "
                         "plain prompt's key instead, as in ROME's code, so they need not be 0)")
        for j, u in enumerate(self.updates):
            pres = self.info.get("preservation", [None] * len(self.updates))[j]
            if u.keys.shape[1] == 0:  # a post-edit transform's correction (editkit.transforms)
                lines.append(f"{j:>3} {u.layer:>5} {'—':>5} {float(u.delta.norm()):>10.4g} "
                             f"{(pres if pres is not None else float('nan')):>10.4g}   (transform: {', '.join(map(str, self.config.get('transforms') or []))})")
                continue
            err = (u.delta @ u.keys - u.residual).norm(dim=0) / u.values.norm(dim=0)
            lines.append(
                f"{j:>3} {u.layer:>5} {u.keys.shape[1]:>5} {float(u.delta.norm()):>10.4g} "
                f"{(pres if pres is not None else float('nan')):>10.4g} {float(err.max()):>10.3g} {float(err.mean()):>10.3g}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------ save / load
    def save(self, path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for j, u in enumerate(self.updates):
            for name in ("keys", "residual", "values", "delta"):
                tensors[f"{j}.{name}"] = getattr(u, name).contiguous()
        save_file(tensors, str(path / "edit.safetensors"))
        meta = {
            "format": 1,
            "layers": [u.layer for u in self.updates],
            "config": self.config,
            "requests": self.requests,
            "info": self.info,
        }
        (path / "edit.json").write_text(json.dumps(meta, indent=1, default=str))
        return path

    @classmethod
    def load(cls, path) -> "Edit":
        path = Path(path)
        meta = json.loads((path / "edit.json").read_text())
        t = load_file(str(path / "edit.safetensors"))
        updates = [
            LayerUpdate(layer, t[f"{j}.keys"], t[f"{j}.residual"], t[f"{j}.values"], t[f"{j}.delta"])
            for j, layer in enumerate(meta["layers"])
        ]
        return cls(updates, meta["config"], meta["requests"], meta.get("info"))
