"""JSON-lines files that runs append to and resume from (sweeps, sequential runs, benchmarks).

    append_line(path, record)   one record, one line, the folder made if needed
    write_lines(path, records)  the file replaced by these records, one a line
    emit(record, path)          a benchmark's result: printed, and appended when a path is given
    read_lines(path)            every record; a line that does not parse (a run killed mid-write)
                                is skipped with a warning, so a run can always resume
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def append_line(path: str | Path, record: dict, default: Callable[[Any], Any] | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, default=default) + "\n")


def write_lines(path: str | Path, records: list[dict]) -> None:
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in records))


def emit(record: dict, path: str | Path | None = None) -> None:
    print(json.dumps(record))
    if path:
        append_line(path, record)


def read_lines(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s line %d is not JSON (an interrupted write?); ignored", path, i + 1)
    return out
