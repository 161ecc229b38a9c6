"""Text corpora for key statistics and reference texts, by name:

    "wikipedia"            the Wikipedia text of the data folder (editkit.paths.data_dir())
    a local folder / file  WikiExtractor `<doc>` files or plain text (one document per `<doc>`
                           block, or the whole file), JSONL with a "text" field per line, or
                           parquet with a "text" column
    a registered name      a corpus built by code, e.g. "editkit-teach" (registered by
                           editkit.teaching): register_corpus(name, version, documents_fn)
    "name" or "name:config"  a hub dataset, streamed (needs `pip install "editkit[hub]"`),
                           e.g. "wikimedia/wikipedia:20231101.en"

Identity (what the statistics cache is keyed by): a registered corpus by name and version, local
files by their names and sizes, a hub dataset by its name.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable, Iterator

from . import paths
from .registry import Registry

Documents = Callable[[], Iterator[str]]
CORPORA: Registry[tuple[str, Documents]] = Registry("corpus", "corpora")  # name → (version, documents)


def register_corpus(name: str, version: str, documents_fn: Documents) -> None:
    """A corpus built by code; statistics computed on it are found under (name, version) anywhere."""
    CORPORA.register(name, (version, documents_fn))


def corpus_path(corpus: str) -> Path | None:
    if corpus == "wikipedia":
        return paths.data_dir() / "wikipedia"
    p = Path(corpus)
    return p if p.exists() else None


def corpus_identity(corpus: str) -> str:
    if corpus in CORPORA:
        return f"generated:{corpus}:{CORPORA.get(corpus)[0]}"
    p = corpus_path(corpus)
    if p is None:
        return f"datasets:{corpus}"
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"local:{p.name}:{h.hexdigest()[:16]}"


_DOC = re.compile(r"<doc[^>]*>|</doc>")


def file_documents(f: Path) -> Iterator[str]:
    """The documents of one file: its `<doc>` blocks (WikiExtractor), JSONL "text" fields, a parquet
    "text" column, or the whole file; each stripped, empty ones skipped. editkit's one reader of
    such files (the teaching corpus reads Wikipedia through it too)."""
    if f.suffix == ".parquet":  # a "text" column (pyarrow comes with the hub extra)
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise ValueError(f'{f}: reading parquet needs pyarrow: pip install "editkit[hub]"') from None
        table = pq.read_table(f)
        if "text" not in table.column_names:
            raise ValueError(f"{f}: a parquet corpus needs a 'text' column (has {table.column_names})")
        for t in table.column("text").to_pylist():
            if t and t.strip():
                yield t.strip()
        return
    text = f.read_text(encoding="utf-8", errors="replace")
    if f.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if "text" not in row:
                    raise ValueError(f"{f}:{n}: a JSONL corpus needs a 'text' field on every line")
                if row["text"].strip():
                    yield row["text"].strip()
        return
    for doc in _DOC.split(text):
        if doc.strip():
            yield doc.strip()


def hub_documents(name: str, config: str | None = None, split: str = "train", field: str = "text") -> Iterator[str]:
    """A hub (or local `save_to_disk`) dataset's text column, streamed."""
    try:
        import datasets
    except ModuleNotFoundError:
        raise ValueError(
            f"corpus {name!r} is not a local folder or file, nor a registered corpus ({', '.join(CORPORA.names())}); "
            'a hub dataset by that name needs the `datasets` package: pip install "editkit[hub]" (or point corpus at a folder of text)'
        ) from None
    if Path(name).is_dir():  # saved with `save_to_disk`
        ds = datasets.load_from_disk(name)
        rows = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    else:
        rows = datasets.load_dataset(name, config, split=split, streaming=True)
    for row in rows:
        if str(row.get(field, "")).strip():
            yield row[field]


def documents(corpus: str) -> Iterator[str]:
    """Texts in a fixed order (see the module docstring for what a name can be)."""
    if corpus in CORPORA:
        yield from CORPORA.get(corpus)[1]()
        return
    p = corpus_path(corpus)
    if p is None:
        name, _, config = corpus.partition(":")
        yield from hub_documents(name, config or None)
        return
    if p.is_dir() and any((p / f).exists() for f in ("dataset_info.json", "dataset_dict.json")):
        yield from hub_documents(str(p))
        return
    for f in sorted(f for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file()):
        yield from file_documents(f)
