"""Ship a model's editing defaults beside its weights: hparams.json and key statistics.

    python -m editkit.teaching.defaults --model editkit/assets/editkit-teach --layers auto [--auto-layers 2] \
        [--corpus editkit-teach] [--n-tokens 400000] [--hparams editkit/teaching/teach_hparams.json]

`--layers auto` chooses them from a causal trace by MEMIT's rule (editkit.auto_layers: the
`--auto-layers` consecutive layers of largest MLP effect at the last subject token, over facts
the model knows from its own cases), and for every one-layer pair ("<objective>+single" in the
objectives) ROME's: the layer of the largest effect (the single strategy would otherwise write
the range's last layer); the trace's per-layer effects are kept in hparams.json.

The statistics are made by the same code as any other (editkit.stats.collect with the
StatsConfig the hparams name) and written into <model>/stats/ under the same cache key, stored as
float32 to keep the shipped folder small; editing then needs no corpus pass. hparams.json holds
the layers, target-optimisation and statistics settings, and per-objective hyperparameters
(optionally per objective+strategy), read by `Editor.for_model`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from ..config import StatsConfig, TargetConfig
from ..editor import HPARAMS
from ..models import load_model
from ..stats import cache_key, collect, write_entry

log = logging.getLogger(__name__)


def ship(model_dir: Path, layers: list[int] | str, stats: StatsConfig, target: dict, objectives: dict, progress: bool = True,
         auto_layers: int = 2) -> dict:
    model, tok = load_model(str(model_dir))
    TargetConfig(**target)  # validate before anything is written
    chosen = None
    if layers == "auto":
        from ..auto_layers import choose_layers

        chosen = choose_layers(model, tok, auto_layers, progress=progress)
        layers = chosen["layers"]
        peak = max(range(len(chosen["effects"])), key=lambda l: chosen["effects"][l])
        objectives = {k: ({**v, "layers": [peak]} if k.endswith("+single") else v) for k, v in objectives.items()}
    C = collect(model, tok, layers, stats, progress)
    folder = model_dir / "stats"
    for old in folder.glob("c0-*"):
        old.unlink()
    for l in layers:
        write_entry(folder, cache_key(model, l, stats), C[l], dtype=torch.float32)
    hp = {
        "layers": layers,
        "target": target,
        "stats": stats.model_dump(mode="json", exclude={"cache_dir"}),
        "objectives": objectives,
    }
    if chosen is not None:
        hp["layers_from"] = {"rule": "editkit.auto_layers (MEMIT's: the window of largest MLP effect at the last subject token)",
                             **{k: chosen[k] for k in ("effects", "window", "facts")}}
    (model_dir / HPARAMS).write_text(json.dumps(hp, indent=1) + "\n")
    return hp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--layers", nargs="+", required=True, help="layer numbers, or auto (from a causal trace)")
    ap.add_argument("--auto-layers", type=int, default=2, help="with --layers auto: how many consecutive layers")
    ap.add_argument("--n-tokens", type=int, default=400_000)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--ridge", type=float, default=0.0, help="C0 + ridge·mean(diag C0)·I when solving (for layers with dead MLP units)")
    ap.add_argument("--corpus", default="wikipedia", help="statistics corpus: a folder, 'wikipedia', or 'editkit-teach' (the teaching model's own text)")
    ap.add_argument("--hparams", help="JSON file with 'target' and 'objectives' entries")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    extra = json.loads(Path(a.hparams).read_text()) if a.hparams else {}
    stats = StatsConfig(corpus=a.corpus, n_tokens=a.n_tokens, max_len=a.max_len, ridge=a.ridge)
    layers = "auto" if a.layers == ["auto"] else [int(x) for x in a.layers]
    hp = ship(Path(a.model), layers, stats, extra.get("target", {}), extra.get("objectives", {}), not a.no_progress, a.auto_layers)
    log.info("wrote %s", json.dumps(hp))


if __name__ == "__main__":
    main()
