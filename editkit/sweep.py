"""Sweeps: a grid over objective × distribution strategy × batch size × any hyperparameter.

    spec = SweepSpec(objectives=["emmet", "memit"], strategies=["single", "spread"],
                     batch_sizes=[1, 16, 64], n=64, dataset="counterfact", fixed={"layers": [3, 4, 5]})
    records = run_sweep(spec, "results.jsonl")          # resumable
    plot(records, "plots/");  print(markdown_table(records))   # editkit.report

One run = one (objective, strategy, batch size b, grid point). As in the MEMIT evaluation, it takes
the first N cases of the data set slice, N = b · ⌈max(n, b) / b⌉, splits them into N / b batches,
and for each batch: applies the whole batch with one `editor.edit` call, evaluates that batch's
requests on the edited model, and undoes the edit (bit-exact). The run's metrics are means over
its N requests; the unedited model's metrics on the same N requests come from a baseline computed
once per (model, data set slice) and cached in the same JSONL file.

ROME is applied one request at a time *within* a batch by the Editor (its objective is registered
one_at_a_time): a batch of b with ROME is b sequential ROME edits, the papers' comparison.

Each run appends one JSON line: the full EditorConfig, the sweep fields, the data set slice, the
seed, the editkit version, the metrics, the baseline, what the edits report (‖ΔW‖ per layer,
memorisation error) and timings. Its `hash` covers everything that changes the numbers (model
identity, config without progress/cache settings, batch size, N, data, seed, version, evaluation
settings); a run whose hash is already in the file is skipped. Before a run, torch's RNG is
seeded with `seed` (and the Editor gets the same seed), so rerunning a config gives the same numbers.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tqdm.auto import tqdm

from .config import EditorConfig, StatsConfig, TargetConfig
from .distribution import STRATEGIES
from .editor import Editor, make_editor
from .evaluation import edit_metrics, evaluate
from .evaluation.datasets import Dataset, default_dataset, load
from .jsonl import append_line, read_lines
from .models import load_model, model_identity
from .objectives import OBJECTIVES
from .target_cache import TargetCache, digest

log = logging.getLogger(__name__)

_EDITOR_KEYS = set(EditorConfig.model_fields) | set(TargetConfig.model_fields) | set(StatsConfig.model_fields)
_NOT_HASHED = {"progress", "cache_dir"}


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("editkit")
    except Exception:  # noqa: BLE001 — not installed (run from a source tree without pip install)
        return "unknown"


class SweepSpec(BaseModel):
    """Everything a sweep varies and fixes; a JSON file with these keys is a valid spec."""

    model_config = ConfigDict(extra="forbid")

    model: str = "editkit-teach"
    dataset: str | None = None  # a loader name (counterfact:val, zsre, editkit-teach:val, …) or a path; default: the
    # model's own cases when its folder ships them (editkit-teach:val), else counterfact:val
    start: int = Field(0, ge=0)
    n: int = Field(64, ge=1)  # a run takes N = b·⌈max(n, b)/b⌉ cases
    objectives: list[str] = Field(default_factory=lambda: ["rome", "emmet", "memit", "alphaedit"])
    strategies: list[str] = Field(default_factory=lambda: ["single", "spread"])
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 16, 64, 256, 1024])
    grid: dict[str, list] = Field(default_factory=dict)  # Editor keyword → values ("emmet.alpha" for one objective)
    fixed: dict[str, Any] = Field(default_factory=dict)  # Editor keywords of every run ("memit.mom2_weight" for one)
    seed: int = 0
    generation: bool = False  # add generation entropy / reference score (CounterFact; slow)
    generation_max_len: int = Field(100, ge=2)  # tokens per generated text, prompt included (ROME: 100)
    reference_corpus: str = "wikipedia"  # TF-IDF statistics and reference passages come from here
    eval_batch_size: int = Field(64, ge=1)
    shipped_defaults: bool = True  # start from the model's hparams.json (Editor.for_model) when it has one
    reuse_targets: bool = False  # share target values between runs that edit the same batch (see TargetCache)
    keep_rows: bool = False  # also store each run's per-request metric rows (for intervals; not part of a run's hash)

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v):
        for o in v:
            OBJECTIVES.get(o)
        return v

    @model_validator(mode="after")
    def _dataset(self):
        if self.dataset is None:
            self.dataset = default_dataset(self.model, "val")
        return self

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v):
        for s in v:
            STRATEGIES.get(s)  # names the registered ones
        return v

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v):
        if not v or min(v) < 1:
            raise ValueError("batch sizes must be positive integers")
        return v

    def cases(self, batch_size: int) -> int:
        """N for a batch size: at least n, at least one batch, a whole number of batches."""
        return batch_size * math.ceil(max(self.n, batch_size) / batch_size)

    def runs(self) -> list[dict]:
        """Every run of the grid, in order: {objective, strategy, batch_size, point, kwargs}."""
        out = []
        for obj in self.objectives:
            fixed = _for_objective(self.fixed, obj)
            grid = _for_objective(self.grid, obj)
            names = sorted(grid)
            for values in itertools.product(*(grid[k] for k in names)) if names else [()]:
                point = dict(zip(names, values))
                for strat in self.strategies:
                    for b in self.batch_sizes:
                        out.append({"objective": obj, "strategy": strat, "batch_size": b, "point": point, "kwargs": {**fixed, **point}})
        return out


def _for_objective(d: dict, objective: str) -> dict:
    """Keys of `d` that apply to `objective`: editor keys, its own hyperparameters, and
    "objective.key" entries for it (which win over plain keys)."""
    own = set(OBJECTIVES.get(objective).solver.Config.model_fields)
    out, scoped = {}, {}
    for k, v in d.items():
        name, dot, key = k.partition(".")
        if dot:
            if name == objective:
                scoped[key] = v
            elif name not in OBJECTIVES:
                raise ValueError(f"{k!r}: {name!r} is not an objective; use objective.key or a plain key")
        elif k in _EDITOR_KEYS or k in own:
            out[k] = v
        elif not any(k in OBJECTIVES.get(o).solver.Config.model_fields for o in OBJECTIVES.names()):
            raise ValueError(f"{k!r} is not a setting of the editor or of any objective")
    return {**out, **scoped}


# ---------------------------------------------------------------- records
def _hashed_config(cfg: EditorConfig) -> dict:
    d = cfg.model_dump(mode="json")
    d.pop("progress", None)
    d["stats"] = {k: v for k, v in d["stats"].items() if k not in _NOT_HASHED}
    return d


def read_run_records(path: Path) -> list[dict]:
    """Records of a sweep's JSONL file (an interrupted last line is skipped: editkit.jsonl)."""
    return read_lines(path)


def _append(path: Path, record: dict) -> None:
    append_line(path, record, default=_json_default)


def _json_default(x):
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"{type(x)} is not JSON serialisable")


def _nan_to_none(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def _mean_dicts(ds: list[dict]) -> dict:
    """Element-wise mean of (nested) numeric dicts; None/NaN entries are left out."""
    out: dict = {}
    keys = list(dict.fromkeys(k for d in ds for k in d))
    for k in keys:
        vals = [d[k] for d in ds if k in d and d[k] is not None]
        if vals and isinstance(vals[0], dict):
            out[k] = _mean_dicts(vals)
        else:
            nums = [float(v) for v in vals if isinstance(v, (int, float)) and not math.isnan(float(v))]
            out[k] = sum(nums) / len(nums) if nums else None
    return out


# ---------------------------------------------------------------- running
class Sweeper:
    """Runs a spec against one loaded model; keeps the baseline and the generation resources."""

    def __init__(self, spec: SweepSpec, out: Path | str, model=None, tok=None, progress: bool = True):
        self.spec, self.out, self.progress = spec, Path(out), progress
        if model is None:
            model, tok = load_model(spec.model)
        self.model, self.tok = model, tok
        n_max = max(spec.cases(b) for b in spec.batch_sizes)
        self.data: Dataset = load(spec.dataset, spec.start, n_max)
        self.requests = self.data.requests()
        if self.data.kind == "zsre" and spec.generation:
            raise ValueError("generation metrics are defined for CounterFact only")
        self._baseline_rows: list[dict] | None = None
        self._gen = None
        self._targets = TargetCache()

    # ------------------------------------------------------------ pieces
    def eval_settings(self) -> dict:
        g = {"generation_max_len": self.spec.generation_max_len, "reference_corpus": self.spec.reference_corpus} if self.spec.generation else {}
        return {"generation": self.spec.generation, "kind": self.data.kind, **g}

    def baseline_rows(self) -> list[dict]:
        """The unedited model's per-request rows over the largest slice, computed once per (model,
        data slice, evaluation settings) and cached in the JSONL file as a `baseline` record."""
        if self._baseline_rows is not None:
            return self._baseline_rows
        key = {
            "model": model_identity(self.model),
            "dataset": self.data.describe(),
            "eval": self.eval_settings(),
            "seed": self.spec.seed,
            "version": version(),
        }
        h = digest(key)
        for r in read_run_records(self.out):
            if r.get("kind") == "baseline" and r.get("hash") == h:
                self._baseline_rows = r["rows"]
                log.info("baseline of %s read from %s", self.data.source, self.out)
                return self._baseline_rows
        t0 = time.perf_counter()
        torch.manual_seed(self.spec.seed)
        _, rows = self._evaluate(self.requests, list(range(len(self.requests))), baseline=None)
        self._baseline_rows = rows
        _append(self.out, _nan_to_none({"kind": "baseline", "hash": h, **key, "seconds": time.perf_counter() - t0, "rows": rows}))
        return rows

    def _generation_kwargs(self, idx: list[int]) -> dict | None:
        if not self.spec.generation:
            return None
        from .evaluation.generation import ReferenceTexts, wikipedia_tfidf

        if self._gen is None:
            corpus = self.spec.reference_corpus
            self._gen = (wikipedia_tfidf(corpus), ReferenceTexts(corpus), self.data.generation_prompts())
        tfidf, refs, prompts = self._gen
        return {
            "prompts": [prompts[i] for i in idx],
            "references": [" ".join(refs.passages(self.requests[i].target_new)) for i in idx],
            "tfidf": tfidf,
            "seed": self.spec.seed,
            "max_len": self.spec.generation_max_len,
        }

    def _evaluate(self, requests, idx: list[int], baseline: list[dict] | None):
        return evaluate(
            self.model, self.tok, self.data.kind, requests, baseline=baseline,
            batch_size=self.spec.eval_batch_size, generation=self._generation_kwargs(idx),
        )

    def editor(self, run: dict) -> Editor:
        kw = {**run["kwargs"], "seed": self.spec.seed, "progress": False}
        return make_editor(self.model, run["objective"], run["strategy"], self.spec.shipped_defaults, **kw)

    def run_fields(self, run: dict, editor: Editor) -> dict:
        N = self.spec.cases(run["batch_size"])
        return {
            "model": self.spec.model,
            "model_identity": model_identity(self.model),
            "dataset": {**self.data.describe(), "n": N},
            "seed": self.spec.seed,
            "version": version(),
            "objective": run["objective"],
            "strategy": run["strategy"],
            "batch_size": run["batch_size"],
            "n_cases": N,
            "n_batches": N // run["batch_size"],
            "point": run["point"],
            "eval": self.eval_settings(),
        }

    def hash_of(self, fields: dict, editor: Editor) -> str:
        return digest({**fields, "config": _hashed_config(editor.config)})

    # ------------------------------------------------------------ one run
    def run_one(self, run: dict) -> dict:
        editor = self.editor(run)
        fields = self.run_fields(run, editor)
        b, N = run["batch_size"], fields["n_cases"]
        base = self.baseline_rows()[:N]
        torch.manual_seed(self.spec.seed)
        rows, edits = [], []
        t_edit = t_eval = t_targets = 0.0
        batches = range(0, N, b)
        if self.spec.reuse_targets and not editor.one_at_a_time:
            editor.target_cache = self._targets
        hits0 = self._targets.hits
        for s in tqdm(batches, desc=f"{run['objective']}/{run['strategy']} b={b}", disable=not self.progress, leave=False):
            idx = list(range(s, s + b))
            batch = [self.requests[i] for i in idx]
            t0 = time.perf_counter()
            with editor.applied(self.model, self.tok, batch) as edit:
                t1 = time.perf_counter()
                _, r = self._evaluate(batch, idx, baseline=[base[i] for i in idx])
                edits.append(edit_metrics(edit))
                t_targets += edit.info.get("seconds", {}).get("targets", 0.0)
                t2 = time.perf_counter()
            t_edit, t_eval = t_edit + t1 - t0, t_eval + t2 - t1
            rows += r
        from .evaluation.counterfact import summarise as cf_summary
        from .evaluation.zsre import summarise as zs_summary

        summarise = cf_summary if self.data.kind == "counterfact" else zs_summary
        record = {
            "kind": "run",
            "hash": self.hash_of(fields, editor),
            **fields,
            "config": editor.config.model_dump(mode="json"),
            "reference": editor.reference,  # the code whose conventions the objective's defaults follow
            "metrics": summarise(rows),
            "baseline": summarise(base),
            "edit": _mean_dicts(edits),
            "seconds": {"edit": t_edit, "targets": t_targets, "eval": t_eval, "edit_per_request": t_edit / N},
            "targets_reused": self._targets.hits - hits0,  # batches whose targets came from an earlier run
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if self.spec.keep_rows:
            record["rows"] = rows
        return _nan_to_none(record)

    # ------------------------------------------------------------ the grid
    def run(self) -> list[dict]:
        """Every run of the grid not yet in the file. A run whose edit fails (a singular system,
        NaN once sequential edits broke the model, an edit that cannot take) is recorded as
        `kind: "failed"` with its error and the sweep goes on; the model is restored either way
        (each batch is undone, and a failing edit restores what it wrote). Resuming skips both."""
        done = {r["hash"] for r in read_run_records(self.out) if r.get("kind") in ("run", "failed")}
        runs = self.spec.runs()
        for b in sorted({r["batch_size"] for r in runs}):
            if self.spec.cases(b) != self.spec.n:
                log.warning("batch size %d with n = %d: each run of it takes N = %d cases (a whole number of batches, at least one)",
                            b, self.spec.n, self.spec.cases(b))
        mine = set()
        for run in tqdm(runs, desc="sweep", disable=not self.progress):
            editor = self.editor(run)
            fields = self.run_fields(run, editor)
            h = self.hash_of(fields, editor)
            mine.add(h)
            if h in done:
                log.info("skip %s/%s b=%d %s: already in %s", run["objective"], run["strategy"], run["batch_size"], run["point"], self.out)
                continue
            try:
                record = self.run_one(run)
            except (ArithmeticError, ValueError) as e:
                failed = {"kind": "failed", "hash": h, **fields, "config": editor.config.model_dump(mode="json"),
                          "reference": editor.reference, "error": f"{type(e).__name__}: {e}",
                          "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                _append(self.out, failed)
                done.add(h)
                log.error("%s/%s b=%d %s FAILED: %s", run["objective"], run["strategy"], run["batch_size"], run["point"], failed["error"])
                continue
            _append(self.out, record)
            done.add(h)
            log.info("%s/%s b=%d %s: %s", run["objective"], run["strategy"], run["batch_size"], run["point"], _short(record["metrics"]))
        return [r for r in read_run_records(self.out) if r.get("kind") == "run" and r["hash"] in mine]


def _short(m: dict) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in m.items() if isinstance(v, float))


def run_sweep(spec: SweepSpec, out: Path | str, model=None, tok=None, progress: bool = True) -> list[dict]:
    """Run (or resume) the sweep; return the run records of this spec's grid (the file may hold
    other sweeps' runs too: `read_run_records` gives all of them)."""
    return Sweeper(spec, out, model, tok, progress).run()


