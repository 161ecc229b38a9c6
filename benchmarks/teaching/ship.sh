#!/usr/bin/env bash
# Build the shipped teaching model's folder from nothing but ../shared/data, one step after another
# (each step is seeded; training resumes where it stopped when rerun after a kill).
#
#   bash benchmarks/teaching/ship.sh [editkit/assets/editkit-teach]
#
# Then tune the editing hyperparameters on its cases and ship them (README, "The teaching model"):
#   python benchmarks/ablation/ablation.py tune      # → benchmarks/ablation/tuned.json (22 min on one CPU thread)
#   put tuned.json as the "objectives" of editkit/teaching/teach_hparams.json, and rerun the `defaults` step below.
# The statistics corpus "editkit-teach" is the text of the model in editkit/assets/editkit-teach: build there.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-editkit/assets/editkit-teach}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python -m editkit.teaching.train --out "$OUT" --no-progress                 # 40 min of training on one CPU thread
python -m editkit.teaching.cases --model "$OUT"                             # cases/train.json, cases/val.json: the facts it knows
python -m editkit.demo --model "$OUT" --write-cases --no-progress           # demo_cases.json
python -m editkit.teaching.defaults --model "$OUT" --layers auto --auto-layers 2 \
    --corpus editkit-teach --ridge 1e-6 --hparams editkit/teaching/teach_hparams.json --no-progress  # layers from the trace, C0, hparams.json
python -m editkit.teaching.quality --model "$OUT"                           # quality.json
