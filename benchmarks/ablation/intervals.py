"""Sampling error of sweep runs: S, ES, PS, NS with a bootstrap interval over the run's requests.

    python benchmarks/ablation/intervals.py RESULTS.jsonl [...] [--samples 2000] [--seed 0]

For each `run` record (and the unedited `baseline`) of the given sweep JSONL files: the metrics
recomputed from its per-request rows (the same `summarise` the sweep used, so they match its
table), and a 95 % percentile bootstrap interval from resampling the requests with replacement
(B = --samples). S is the harmonic mean of the resampled ES, PS and NS means, so its interval
carries their correlation. Also, for two runs on the same requests, a paired difference is
easy to read off the printed rows; this script does not test one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from editkit.evaluation.counterfact import SUCCESS, harmonic_mean, summarise  # noqa: E402


def bootstrap(rows: list[dict], samples: int, seed: int) -> dict:
    """{metric: (value, low, high)} for ES, PS, NS and S over the rows (one row per request)."""
    x = np.array([[r[k] for k in SUCCESS] for r in rows], dtype=float)  # (n, 3)
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
    a = ap.parse_args(argv)
    print("| run | N | S [95 %] | ES | PS | NS |")
    print("|---|---|---|---|---|---|")
    for path in a.results:
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line)
            if rec.get("kind") not in ("run", "baseline") or not rec.get("rows"):
                continue
            b = bootstrap(rec["rows"], a.samples, a.seed)
            cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in (b[k] for k in ("score", *SUCCESS))]
            print(f"| {label(rec)} | {len(rec['rows'])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
