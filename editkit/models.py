"""Loading a model and its tokenizer: a hub name, a local folder, editkit's own teaching model,
or an already loaded (model, tokenizer) pair.

    model, tok = load_model("gpt2")              # needs the hub (or its local cache)
    model, tok = load_model("editkit-teach")     # ships with editkit, no network
    model, tok = load_model("path/to/folder")
    model, tok = load_model((model, tok))        # passed through
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
TEACHING_MODEL = "editkit-teach"


def resolve(name_or_path: str) -> str:
    """A shipped model's folder for its short name, else the argument unchanged."""
    shipped = ASSETS / name_or_path
    if (shipped / "config.json").exists():
        return str(shipped)
    return name_or_path


def quiet_loading() -> None:
    """Switch off transformers' own progress bars (the "Loading weights" bar), for --no-progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_model(name_or_path, *, dtype: torch.dtype | str | None = None, device: str | None = None, revision: str | None = None,
               device_map: str | dict | None = None, offload_folder: str | None = None):
    """(model in eval mode, tokenizer). `device_map` ("auto", or {module: device | "cpu" | "disk"})
    splits the model over devices with accelerate (`pip install "editkit[scale]"`); edited layers
    must stay on a device (offloaded ones are refused by the editor), other modules may be offloaded."""
    if isinstance(name_or_path, tuple):
        model, tok = name_or_path
        return model, tok
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(str(name_or_path))
    kwargs = {"revision": revision} if revision else {}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if device_map is not None:
        kwargs.update(device_map=device_map, **({"offload_folder": offload_folder} if offload_folder else {}))
    log.info("loading %s", path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:  # hub errors are OSError in transformers 5, an invalid repo id a ValueError in 4.x
        if Path(path).exists():
            raise
        raise OSError(
            f"could not load {name_or_path!r}: it is not a local folder, and the hub could not provide it ({e}). "
            f"Offline, give a local folder of a saved model, or use editkit's shipped teaching model: "
            f"load_model({TEACHING_MODEL!r})."
        ) from e
    tok = AutoTokenizer.from_pretrained(path, **({"revision": revision} if revision else {}))
    if device is not None and device_map is None:
        model = model.to(device)
    model.eval()
    model._editkit_identity = _hub_identity(str(name_or_path), path, model, revision)
    return model, tok


def _hub_identity(name: str, path: str, model, revision: str | None) -> str | None:
    """Name + revision for hub models; None (→ weight hash, computed on demand) for local folders."""
    if Path(path).exists():
        return None
    commit = getattr(model.config, "_commit_hash", None) or revision or "main"
    return f"hub:{name}@{commit}"


def _materialised_state(model) -> dict:
    """model.state_dict(), with each tensor that accelerate offloaded (to the CPU map or to disk:
    a `meta` placeholder in the module) read from its hook's weights map instead."""
    state = model.state_dict()
    if not any(t.device.type == "meta" for t in state.values()):
        return state
    for mname, m in model.named_modules():
        hook = getattr(m, "_hf_hook", None)
        if not (getattr(hook, "offload", False) and getattr(hook, "weights_map", None) is not None):
            continue
        for local, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            full = f"{mname}.{local}" if mname else local
            if full in state and t.device.type == "meta":
                state[full] = hook.weights_map[local]
    return state


def model_identity(model) -> str:
    """A string that changes whenever the model's original weights would: hub name + revision,
    else a SHA-256 of every parameter and buffer. Computed once and kept on the model, so the
    identity stays that of the unedited model while edits are applied to it."""
    ident = getattr(model, "_editkit_identity", None)
    if ident:
        return ident
    h = hashlib.sha256()
    h.update(model.config.model_type.encode())
    for name, t in sorted(_materialised_state(model).items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    ident = f"sha256:{h.hexdigest()[:32]}"
    model._editkit_identity = ident
    return ident
