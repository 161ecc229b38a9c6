"""Sampling error of sweep runs: S, ES, PS, NS with a bootstrap interval over the run's requests.

    python benchmarks/ablation/intervals.py RESULTS.jsonl [...] [--samples 2000] [--seed 0]

For each `run` record (and the unedited `baseline`) of the given sweep JSONL files: the metrics
recomputed from its per-request rows (the same `summarise` the sweep used, so they match its
table), and a 95 % percentile bootstrap interval from resampling the requests with replacement
(B = --samples). S is the harmonic mean of the resampled ES, PS and NS means, so its interval
carries their correlation.

With --paired, the first run read is the reference, and for every later run on the same
requests (matched by case_id) the difference S_reference − S_run gets a paired interval: both
runs resampled with the same indices, so what the requests share cancels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from editkit.evaluation.counterfact import SUCCESS, harmonic_mean, summarise  # noqa: E402


def successes(rows: list[dict]) -> np.ndarray:
    """(n, 3): each request's ES, PS, NS."""
    return np.array([[r[k] for k in SUCCESS] for r in rows], dtype=float)


def bootstrap(rows: list[dict], samples: int, seed: int) -> dict:
    """{metric: (value, low, high)} for ES, PS, NS and S over the rows (one row per request)."""
    x = successes(rows)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), size=(samples, len(rows)))
    means = x[idx].mean(axis=1)  # (B, 3)
    scores = np.array([harmonic_mean(m) for m in means])
    point = summarise(rows)
    out = {}
    for j, k in enumerate(SUCCESS):
        lo, hi = np.percentile(means[:, j], [2.5, 97.5])
        out[k] = (point[k], float(lo), float(hi))
    lo, hi = np.percentile(scores, [2.5, 97.5])
    out["score"] = (point["score"], float(lo), float(hi))
    return out


def paired_difference(ref: list[dict], other: list[dict], samples: int, seed: int) -> tuple[float, float, float]:
    """S(ref) − S(other) and its 95 % paired bootstrap interval; both lists about the same case_ids."""
    by_id = {r["case_id"]: r for r in other}
    if sorted(by_id) != sorted(r["case_id"] for r in ref):
        raise ValueError("the two runs are not about the same requests (case_ids differ)")
    a = successes(ref)
    b = successes([by_id[r["case_id"]] for r in ref])
    idx = np.random.default_rng(seed).integers(0, len(ref), size=(samples, len(ref)))
    diffs = np.array([harmonic_mean(x) - harmonic_mean(y) for x, y in zip(a[idx].mean(axis=1), b[idx].mean(axis=1))])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return summarise(ref)["score"] - summarise(other)["score"], float(lo), float(hi)


def label(rec: dict) -> str:
    if rec["kind"] == "baseline":
        return "(unedited)"
    point = ",".join(f"{k}={v}" for k, v in (rec.get("point") or {}).items())
    return f"{rec['objective']} + {rec['strategy']}, b = {rec['batch_size']}" + (f" ({point})" if point else "")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paired", action="store_true", help="also S of the first run minus S of each later run, paired")
    a = ap.parse_args(argv)
    records = [json.loads(line) for path in a.results for line in Path(path).read_text().splitlines()]
    records = [r for r in records if r.get("kind") in ("run", "baseline") and r.get("rows")]
    runs = [r for r in records if r["kind"] == "run"]
    if a.paired:
        print("| reference − run | N | ΔS [95 %, paired] |")
        print("|---|---|---|")
        for rec in runs[1:]:
            d, lo, hi = paired_difference(runs[0]["rows"], rec["rows"], a.samples, a.seed)
            print(f"| {label(runs[0])} − {label(rec)} | {len(rec['rows'])} | {d:.3f} [{lo:.3f}, {hi:.3f}] |")
        print()
    print("| run | N | S [95 %] | ES | PS | NS |")
    print("|---|---|---|---|---|---|")
    for rec in records:
        b = bootstrap(rec["rows"], a.samples, a.seed)
        cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in (b[k] for k in ("score", *SUCCESS))]
        print(f"| {label(rec)} | {len(rec['rows'])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
