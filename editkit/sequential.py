"""Sequential (lifelong) editing: T batches of b edits applied cumulatively, with the model's
degradation measured as edits accumulate.

    for t = 1 … T:   W ← W + ΔW_t  (the batch's edit, on top of every earlier one; no undo)
    every k batches (and before the first):
        ES, PS, NS, S     over all edits so far, and over the first batch (retention)
        NS_kept           neighbourhood prompts whose preference (true vs new object) is still
                          the unedited model's: the pre-edit answers as the reference
        other_known       never-edited facts the model knew that it still knows (P(true) > P(new))
        wiki_nll          mean token NLL on held-out Wikipedia text (the end of the corpus)
        weight_dist[l]    ‖W_l − W0_l‖_F per edited layer

As in the AlphaEdit and ENCORE protocols, the metrics are those of the model as it is after the
edits, with b = 100 per batch by default. Edits are drawn from the cases whose true object the
unedited model prefers on the prompt (a known fact being changed), in data order.

Resumable: `out/` holds spec.json (refused if another spec is given), records.jsonl (one line per
checkpoint) and edits/<t>/ (each batch's Edit, safetensors + JSON); a restart re-applies the saved
edits and goes on. A batch that cannot be written any more (the model has collapsed: δ no longer
moves any target, or the model's outputs are not finite) ends the run with a `stopped` record.

    editkit sequential --objective encore --strategy spread --batches 20 --batch-size 100 --out runs/encore
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .architectures import read_weight
from .edit import Edit
from .editor import EditDidNotTakeError
from .evaluation import load
from .evaluation.datasets import default_dataset
from .jsonl import append_line, read_lines, write_lines
from .linalg import NonFiniteError
from .objectives import OBJECTIVES
from .requests import EditRequest
from .scoring import target_logprob
from .tokens import pieces

log = logging.getLogger(__name__)


class SequentialSpec(BaseModel):
    """One sequential run; saved as out/spec.json next to its records."""

    model_config = ConfigDict(extra="forbid")

    model: str = "editkit-teach"
    dataset: str | None = None  # default: the model's own cases (editkit-teach:val), else counterfact:train
    start: int = Field(0, ge=0)
    objective: str = "memit"
    strategy: str = "spread"
    transforms: list[str | dict] = Field(default_factory=list)
    fixed: dict[str, Any] = Field(default_factory=dict)  # Editor keywords of every batch
    batch_size: int = Field(100, ge=1)
    n_batches: int = Field(20, ge=1)
    every: int = Field(5, ge=1)  # checkpoint every this many batches (and after the last)
    n_other: int = Field(200, ge=0)  # never-edited known facts tracked
    scan: int = Field(20_000, ge=1)  # cases read to find known ones
    wiki_chunks: int = Field(16, ge=0)
    wiki_len: int = Field(128, ge=8)
    shipped_defaults: bool = True
    eval_batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _dataset(self):
        if self.dataset is None:
            self.dataset = default_dataset(self.model, "val", "counterfact:train")
        return self


# ---------------------------------------------------------------- measuring
def _prefs(model, tok, prompts: list[str], a: list[str], b: list[str], batch_size: int) -> torch.Tensor:
    """(n,) bool: a more probable than b after each prompt."""
    lp = target_logprob(model, tok, prompts + prompts, a + b, batch_size)
    return lp[: len(prompts)] > lp[len(prompts):]


def edit_scores(model, tok, reqs: list[EditRequest], nb_before: torch.Tensor | None, batch_size: int = 64) -> dict:
    """ES, PS, NS (CounterFact's success rates, mean per request), S (their harmonic mean), and
    NS_kept against `nb_before`, the unedited preferences of the neighbourhood prompts in order."""
    rw = _prefs(model, tok, [r.text for r in reqs], [r.target_new for r in reqs], [r.target_true for r in reqs], batch_size)
    para = [(i, p) for i, r in enumerate(reqs) for p in r.paraphrase_prompts]
    nb = [(i, p) for i, r in enumerate(reqs) for p in r.neighborhood_prompts]
    ps = _prefs(model, tok, [p for _, p in para], [reqs[i].target_new for i, _ in para], [reqs[i].target_true for i, _ in para], batch_size)
    ns = _prefs(model, tok, [p for _, p in nb], [reqs[i].target_true for i, _ in nb], [reqs[i].target_new for i, _ in nb], batch_size)

    def per_request(pairs, hits):
        sums, counts = [0.0] * len(reqs), [0] * len(reqs)
        for (i, _), h in zip(pairs, hits.tolist()):
            sums[i] += h
            counts[i] += 1
        vals = [s / c for s, c in zip(sums, counts) if c]
        return sum(vals) / len(vals) if vals else float("nan")

    out = {"ES": float(rw.float().mean()), "PS": per_request(para, ps), "NS": per_request(nb, ns)}
    vals = [out["ES"], out["PS"], out["NS"]]
    out["S"] = 0.0 if min(vals) <= 0 else (float("nan") if any(math.isnan(v) for v in vals) else 3 / sum(1 / v for v in vals))
    if nb_before is not None:
        out["NS_kept"] = float((ns == nb_before).float().mean()) if len(nb) else float("nan")
    return out


def neighbour_prefs(model, tok, reqs: list[EditRequest], batch_size: int = 64) -> torch.Tensor:
    nb = [(r, p) for r in reqs for p in r.neighborhood_prompts]
    return _prefs(model, tok, [p for _, p in nb], [r.target_true for r, _ in nb], [r.target_new for r, _ in nb], batch_size)


@torch.no_grad()
def text_nll(model, tok, chunks: list[list[int]]) -> float:
    """Mean next-token NLL over token chunks (all of one length)."""
    if not chunks:
        return float("nan")
    dev = next(model.parameters()).device
    ids = torch.tensor(chunks, device=dev)
    total, count = 0.0, 0
    for i in range(0, len(ids), 8):
        x = ids[i : i + 8]
        logp = model(input_ids=x).logits[:, :-1].float().log_softmax(-1)
        total += float(-logp.gather(-1, x[:, 1:, None]).sum())
        count += x[:, 1:].numel()
    return total / count


def wiki_chunks(tok, n: int, length: int) -> list[list[int]]:
    """n chunks of `length` tokens from the end of the Wikipedia text (far from what the teaching
    model was trained on, which reads it from the start)."""
    if n == 0:
        return []
    from .paths import data_dir
    from .teaching.corpus import load_wikipedia

    chunks: list[list[int]] = []
    for doc in load_wikipedia(data_dir(), max_chars=n * length * 8, from_end=True):
        ids = tok(doc, verbose=False)["input_ids"]  # long documents are cut into chunks below
        chunks += pieces(ids, length, min_len=length)
        if len(chunks) >= n:
            return chunks[:n]
    raise ValueError(f"the Wikipedia text under {data_dir()} gives only {len(chunks)} chunks of {length} tokens, not {n}")


def known_cases(model, tok, spec: SequentialSpec) -> tuple[list[EditRequest], list[EditRequest]]:
    """(edits, others): known cases in data order; the first T·b are edited, the next n_other tracked."""
    data = load(spec.dataset, start=spec.start)
    data.records = data.records[: spec.scan]
    reqs = [r for r in data.requests() if r.target_true and r.neighborhood_prompts]
    known = _prefs(model, tok, [r.text for r in reqs], [r.target_true for r in reqs], [r.target_new for r in reqs], spec.eval_batch_size)
    reqs = [r for r, k in zip(reqs, known.tolist()) if k]
    need = spec.n_batches * spec.batch_size
    if len(reqs) < need + spec.n_other:
        raise ValueError(
            f"{spec.dataset} from {spec.start} (scanning {spec.scan} cases) has {len(reqs)} cases the model knows, but "
            f"{spec.n_batches} batches of {spec.batch_size} and {spec.n_other} tracked facts need {need + spec.n_other}: "
            "fewer batches, a smaller batch or n_other, or a larger scan"
        )
    return reqs[:need], reqs[need : need + spec.n_other]


# ---------------------------------------------------------------- running
def run_sequential(spec: SequentialSpec, out: str | Path, model=None, tok=None, progress: bool = True) -> list[dict]:
    """Run (or resume) `spec`, writing into `out`; returns every checkpoint record."""
    from .editor import make_editor
    from .models import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    if spec_path.exists() and SequentialSpec(**json.loads(spec_path.read_text())) != spec:
        raise ValueError(f"{out} holds another run (its spec.json differs); use another --out or delete it")
    spec_path.write_text(spec.model_dump_json(indent=1))
    if model is None:
        model, tok = load_model(spec.model)
    editor = make_editor(model, spec.objective, spec.strategy, spec.shipped_defaults,
                         transforms=spec.transforms, progress=False, **spec.fixed)
    (out / "editor.json").write_text(editor.config.model_dump_json(indent=1))
    edits_reqs, others = known_cases(model, tok, spec)
    batches = [edits_reqs[i : i + spec.batch_size] for i in range(0, len(edits_reqs), spec.batch_size)]
    layers = editor.strategy.writes(editor.layers(model, tok))
    W0 = {l: read_weight(model, l).detach().double().clone() for l in layers}
    nb_before = neighbour_prefs(model, tok, edits_reqs, spec.eval_batch_size)
    nb_slices, at = [], 0
    for b in batches:
        k = sum(len(r.neighborhood_prompts) for r in b)
        nb_slices.append((at, at + k))
        at += k
    chunks = wiki_chunks(tok, spec.wiki_chunks, spec.wiki_len)

    rec_path = out / "records.jsonl"
    records = read_lines(rec_path)
    done = sorted(int(p.name) for p in (out / "edits").glob("*") if (p / "edit.json").exists()) if (out / "edits").exists() else []
    done = [t for t in done if t < len(batches)]
    if done != list(range(len(done))):
        raise ValueError(f"{out}/edits holds batches {done}, not 0 … {len(done) - 1}: the run folder is damaged")
    editor.prepare(model, tok)  # templates and C0 from the unedited model, as in an uninterrupted run
    for t in done:  # resume: the saved edits, in order, onto the unedited model
        Edit.load(out / "edits" / str(t)).apply(model)
    kept = [r for r in records if r["batches"] <= len(done)]  # a checkpoint past the saved edits is stale
    if kept != records:
        write_lines(rec_path, kept)
    records = kept
    seconds = records[-1]["edit_seconds"] if records else 0.0

    def checkpoint(t: int) -> dict:
        upto = t * spec.batch_size
        rec = {"batches": t, "edits": upto, "edit_seconds": round(seconds, 2)}
        if t:
            rec["all"] = edit_scores(model, tok, edits_reqs[:upto], nb_before[: nb_slices[t - 1][1]], spec.eval_batch_size)
            rec["first"] = edit_scores(model, tok, batches[0], nb_before[: nb_slices[0][1]], spec.eval_batch_size)
        else:
            rec["unedited"] = edit_scores(model, tok, edits_reqs, nb_before, spec.eval_batch_size)
        still = _prefs(model, tok, [r.text for r in others], [r.target_true for r in others], [r.target_new for r in others], spec.eval_batch_size)
        rec["other_known"] = float(still.float().mean()) if others else float("nan")
        rec["wiki_nll"] = text_nll(model, tok, chunks)
        rec["weight_dist"] = {str(l): float((read_weight(model, l).detach().double() - W0[l]).norm()) for l in layers}
        append_line(rec_path, rec)
        log.info("sequential %s/%s: %s", spec.objective, spec.strategy, {k: v for k, v in rec.items() if k != "weight_dist"})
        return rec

    if not records:
        rec_path.write_text("")
        records.append(checkpoint(0))
    from tqdm.auto import tqdm

    if records and records[-1].get("stopped"):
        return records
    for t in tqdm(range(len(done), len(batches)), desc=f"{spec.objective}/{spec.strategy}", disable=not progress):
        t0 = time.perf_counter()
        try:
            edit = editor.edit(model, tok, batches[t])
        except (EditDidNotTakeError, NonFiniteError) as e:  # the model collapsed: nothing more can be written
            stop = {"batches": t, "edits": t * spec.batch_size, "edit_seconds": round(seconds, 2), "stopped": f"{type(e).__name__}: {e}"}
            append_line(rec_path, stop)
            log.warning("sequential %s/%s stopped at batch %d: %s", spec.objective, spec.strategy, t, e)
            records.append(stop)
            return records
        seconds += time.perf_counter() - t0
        edit.save(out / "edits" / str(t))
        if (t + 1) % spec.every == 0 or t + 1 == len(batches):
            records.append(checkpoint(t + 1))
    return records


# ---------------------------------------------------------------- reporting
def read_runs(folders: list[str | Path]) -> list[dict]:
    """[{name, spec, records}] of each run folder."""
    runs = []
    for f in folders:
        f = Path(f)
        spec = json.loads((f / "spec.json").read_text())
        recs = read_lines(f / "records.jsonl")
        editor = f / "editor.json"  # the settings the run used (the objective's, after the model's hparams.json)
        hp = json.loads(editor.read_text())["hparams"] if editor.exists() else {}
        hp = OBJECTIVES.get(spec["objective"]).build(**hp).config.model_dump() if spec["objective"] in OBJECTIVES else hp  # with its defaults
        settings = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(hp.items()))
        name = f"{spec['objective']}+{spec['strategy']}" + (f"+{'+'.join(map(str, spec['transforms']))}" if spec["transforms"] else "") \
            + (f" ({settings})" if settings else "")
        runs.append({"name": name, "folder": str(f), "spec": spec, "records": recs})
    return runs


METRICS = [("all", "S"), ("all", "ES"), ("all", "PS"), ("all", "NS"), ("all", "NS_kept"), ("first", "ES"), (None, "other_known"), (None, "wiki_nll")]


def _value(rec: dict, group: str | None, key: str):
    if group is None:
        return rec.get(key)
    src = rec.get(group) or rec.get("unedited")
    return None if src is None else src.get(key)


def table(runs: list[dict]) -> str:
    """Markdown: one row per run at its last checkpoint, with the unedited model's row."""
    head = ["run", "b", "edits", "S", "ES", "PS", "NS", "NS kept", "first-batch ES", "other known", "wiki NLL", "max ‖W−W0‖", "s/edit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if runs:
        r0 = runs[0]["records"][0]
        cells = [f"{_value(r0, g, k):.3f}" if _value(r0, g, k) is not None else "–" for g, k in METRICS[:5]]
        lines.append("| unedited | – | 0 | " + " | ".join(cells) + f" | – | {r0['other_known']:.3f} | {r0['wiki_nll']:.3f} | 0 | – |")
    for run in runs:
        measured = [r for r in run["records"] if not r.get("stopped")]
        last = measured[-1]
        stopped = next((r for r in run["records"] if r.get("stopped")), None)
        vals = [_value(last, g, k) for g, k in METRICS]
        cells = [f"{v:.3f}" if isinstance(v, float) else "–" for v in vals]
        dist = max(last["weight_dist"].values()) if last["weight_dist"] else float("nan")
        per = last["edit_seconds"] / max(last["edits"], 1)
        note = f" (stopped at {stopped['edits']}: collapsed)" if stopped else ""
        lines.append(f"| {run['name']}{note} | {run['spec']['batch_size']} | {last['edits']} | " + " | ".join(cells) + f" | {dist:.3g} | {per:.3f} |")
    return "\n".join(lines)


def plot(runs: list[dict], folder: str | Path) -> list[Path]:
    """One PNG per metric against the number of edits, one line per run."""
    from .report import figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    import matplotlib.pyplot as plt

    def draw(ax, group, key):
        for i, run in enumerate(runs):
            pts = [(rec["edits"], max(rec["weight_dist"].values()) if key == "weight_dist" else _value(rec, group, key))
                   for rec in run["records"] if not rec.get("stopped")]
            pts = [(x, y) for x, y in pts if y is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, label=run["name"], color=plt.cm.tab20(i % 20),
                    linestyle=("-", "--", ":")[i // 20 % 3])
        ax.set_xlabel("edits applied")
        ax.set_ylabel(("max ‖W−W0‖_F" if key == "weight_dist" else key) + (f" ({group} edits)" if group else ""))
        if key == "weight_dist":
            ax.set_yscale("log")

    return [figure(folder / f"{(group + '_') if group else ''}{key}.png", lambda ax, g=group, k=key: draw(ax, g, k), size=(11, 4.5), dpi=100,
                   legend=7, outside=True)
            for group, key in METRICS + [(None, "weight_dist")]]
