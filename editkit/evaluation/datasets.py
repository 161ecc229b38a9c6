"""Loaders for the evaluation data sets: CounterFact, zsRE, known_1000.

Every loader takes a local path *or* the original URL (rome.baulab.info), or a short name that
points at the shared data folder (`../shared/data`, or $EDITKIT_DATA):

    load("counterfact")              # ../shared/data/counterfact/counterfact-train.json (flat, EasyEdit)
    load("counterfact:val")          # …/counterfact-val.json
    load("counterfact:rome")         # the original file, ROME format, from rome.baulab.info (needs internet)
    load("zsre"), load("zsre:eval")  # MEND split, EasyEdit keys
    load("knowns")                   # known_1000.json (causal-tracing facts; not edit requests)
    load("path/to/file.json", kind="counterfact")
    load("editkit-teach:val")        # cases a model folder ships: <folder>/cases/val.json (CounterFact
                                     # format, facts that model knows); any "<model>:<split>"


A downloaded file is kept in $EDITKIT_CACHE/data (default ~/.cache/editkit/data) and read from
there afterwards. CounterFact records in either format (flat: prompt/target_new/ground_truth/
rephrase_prompt/locality_prompt; ROME: requested_rewrite/paraphrase_prompts/neighborhood_prompts/
generation_prompts/attribute_prompts) become the same `EditRequest`s.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..paths import cache_dir, data_dir
from ..requests import EditRequest

log = logging.getLogger(__name__)

URLS = {
    "counterfact": "https://rome.baulab.info/data/dsets/counterfact.json",
    "zsre": "https://rome.baulab.info/data/dsets/zsre_mem_eval.json",
    "knowns": "https://rome.baulab.info/data/dsets/known_1000.json",
}

#: short name → (kind, file under the shared data folder, or a URL key)
LOCAL = {
    "counterfact": ("counterfact", "counterfact/counterfact-train.json"),
    "counterfact:train": ("counterfact", "counterfact/counterfact-train.json"),
    "counterfact:val": ("counterfact", "counterfact/counterfact-val.json"),
    "counterfact:rome": ("counterfact", URLS["counterfact"]),
    "zsre": ("zsre", "zsre/zsre_mend_train-1k.json"),
    "zsre:train": ("zsre", "zsre/zsre_mend_train-1k.json"),
    "zsre:eval": ("zsre", "zsre/zsre_mend_eval_portability_gpt4.json"),
    "zsre:rome": ("zsre", URLS["zsre"]),
    "knowns": ("knowns", "knowns/known_1000.json"),
    "knowns:rome": ("knowns", URLS["knowns"]),
}
KINDS = ("counterfact", "zsre", "knowns")


@dataclass
class Dataset:
    """Records of one data set, as read, with the slice they came from."""

    kind: str  # "counterfact" | "zsre" | "knowns"
    source: str  # the name, path or URL given
    records: list[dict]
    start: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def requests(self) -> list[EditRequest]:
        if self.kind == "counterfact":
            return [EditRequest.from_counterfact(r) for r in self.records]
        if self.kind == "zsre":
            return [EditRequest.from_zsre({**r, "case_id": r.get("case_id", self.start + i)}) for i, r in enumerate(self.records)]
        raise ValueError(f"{self.kind} records are facts, not edit requests (use .records)")

    def generation_prompts(self) -> list[list[str]]:
        """Per record: the prompts ROME generates text from. The original CounterFact has them
        (`generation_prompts`); the flat format has none, so the edit prompt and its paraphrases
        (all about the subject and the relation) stand in."""
        out = []
        for r, req in zip(self.records, self.requests()):
            out.append(list(r.get("generation_prompts") or [req.text, *req.paraphrase_prompts]))
        return out

    def describe(self) -> dict:
        return {"dataset": self.source, "kind": self.kind, "start": self.start, "n": len(self.records)}


def data_cache() -> Path:
    return cache_dir() / "data"


def fetch(url: str) -> Path:
    """Download `url` once into the data cache; return the local file."""
    dest = data_cache() / url.rstrip("/").rsplit("/", 1)[-1]
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s", url)
        tmp = dest.with_suffix(".part")
        with urllib.request.urlopen(url) as r, open(tmp, "wb") as f:  # noqa: S310 — user-given data URL
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, dest)
    return dest


def read_records(path_or_url: str | Path) -> list[dict]:
    """A JSON list (or JSONL file) of records, from a local path or an http(s) URL."""
    s = str(path_or_url)
    path = fetch(s) if s.startswith(("http://", "https://")) else Path(s)
    if not path.exists():
        raise FileNotFoundError(f"no data file at {path}; give a local path, a URL or one of {sorted(LOCAL)}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):  # {"data": [...]} or {id: record}
        data = data.get("data", list(data.values()))
    return list(data)


def guess_kind(record: dict) -> str:
    if "requested_rewrite" in record or "rephrase_prompt" in record or "locality_prompt" in record:
        return "counterfact"
    if "src" in record and "alt" in record:
        return "zsre"
    if "attribute" in record and "template" in record:
        return "knowns"
    raise ValueError(f"cannot tell which data set a record with keys {sorted(record)} belongs to; pass kind=")


CASES = "cases"  # a model folder's own edit cases: <folder>/cases/<split>.json, CounterFact records


def model_cases(source: str) -> Path | None:
    """The cases file a shipped or local model folder holds for "<model>:<split>", else None."""
    from ..models import resolve

    name, _, split = source.rpartition(":")
    if not name or not split or "/" in split:
        return None
    path = Path(resolve(name)) / CASES / f"{split}.json"
    return path if path.is_file() else None


def default_dataset(model: str, split: str, otherwise: str | None = None) -> str:
    """"<model>:<split>" when the model folder ships its own cases (the teaching model does: the
    facts it was trained on), else `otherwise` (default: CounterFact's split)."""
    if isinstance(model, str) and model_cases(f"{model}:{split}"):
        return f"{model}:{split}"
    return otherwise or f"counterfact:{split}"


def resolve_source(source: str) -> tuple[str | None, str]:
    """(kind or None, path or URL) of a short name, a model's cases, a path or a URL."""
    if source in LOCAL:
        kind, where = LOCAL[source]
        return kind, where if where.startswith("http") else str(data_dir() / where)
    cases = model_cases(source)
    if cases is not None:
        return "counterfact", str(cases)
    return None, source


def load(source: str = "counterfact", start: int = 0, n: int | None = None, kind: str | None = None) -> Dataset:
    """Records [start, start + n) of a data set (all from `start` when n is None)."""
    k, where = resolve_source(source)
    records = read_records(where)
    kind = kind or k or (guess_kind(records[0]) if records else None)
    if kind not in KINDS:
        raise ValueError(f"unknown data set kind {kind!r}; use one of {KINDS}")
    if start < 0 or start > len(records):
        raise ValueError(f"start {start} is outside the {len(records)} records of {source}")
    end = len(records) if n is None else start + n
    if end > len(records):
        raise ValueError(f"{source} has {len(records)} records; cannot take {n} from {start}")
    return Dataset(kind, source, records[start:end], start)


def load_counterfact(source: str = "counterfact", start: int = 0, n: int | None = None) -> list[EditRequest]:
    return load(source, start, n, kind="counterfact").requests()


def load_zsre(source: str = "zsre", start: int = 0, n: int | None = None) -> list[EditRequest]:
    return load(source, start, n, kind="zsre").requests()


def load_knowns(source: str = "knowns", start: int = 0, n: int | None = None) -> list[dict]:
    """known_1000 facts: {subject, prompt, template, attribute, relation_id, …}."""
    return load(source, start, n, kind="knowns").records
