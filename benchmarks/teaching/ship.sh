#!/usr/bin/env bash
# Build the shipped teaching model's folder from nothing but ../shared/data, one step after another
# (each step is seeded; training resumes where it stopped when rerun after a kill).
#
#   bash benchmarks/teaching/ship.sh [editkit/assets/editkit-teach]
#   TRAIN_ARGS="--seed 3" bash benchmarks/teaching/ship.sh DIR   # another recipe or seed
#
# A folder whose training finished (model.safetensors, no _checkpoint/) is not trained again: the
# later steps are rebuilt for it, so a model trained elsewhere can be copied in and finished here.
#
# Then tune the editing hyperparameters on its cases and ship them (README, "The teaching model"):
#   python benchmarks/ablation/ablation.py tune      # → benchmarks/ablation/tuned.json (22 min on one CPU thread)
#   put tuned.json as the "objectives" of editkit/teaching/teach_hparams.json, and rerun the `defaults` step below.
# The statistics corpus "editkit-teach" is the text of the model in editkit/assets/editkit-teach: build there.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-editkit/assets/editkit-teach}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [[ -f "$OUT/model.safetensors" && ! -d "$OUT/_checkpoint" ]]; then
    echo "ship.sh: $OUT holds a trained model; not training again" >&2
else
    python -m editkit.teaching.train --out "$OUT" --no-progress ${TRAIN_ARGS:-}   # 43 min of training on one CPU thread
fi
python -m editkit.teaching.cases --model "$OUT"                             # cases/train.json, cases/val.json: the facts it knows
python -m editkit.demo --model "$OUT" --write-cases --no-progress           # demo_cases.json
python -m editkit.teaching.defaults --model "$OUT" --layers auto --auto-layers 2 \
    --corpus editkit-teach --ridge 1e-6 --hparams editkit/teaching/teach_hparams.json --no-progress  # layers from the trace, C0, hparams.json
python -m editkit.teaching.quality --model "$OUT"                           # quality.json
