#!/usr/bin/env bash
# Measure a candidate teaching model on 1,024 val cases, as the shipped one was measured
# (benchmarks/ablation/n1024/): ROME b = 1 against MEMIT + spread / single at b = 256, per-request
# rows, and paired bootstrap intervals (issue 10's batch goal: the difference ≤ 0.05).
#
#   bash benchmarks/teaching/confirm.sh /tmp/candS2 /tmp/confirmS2     # the two sweeps side by side
#   JOBS=1 bash benchmarks/teaching/confirm.sh …                        # one after the other: 13–17 min here
#   bash benchmarks/teaching/confirm.sh /tmp/candS2 /tmp/confirmS2 benchmarks/teaching/seeds/seed2
#       … and keep the run summaries (per-request rows dropped), intervals.md and the model's
#       quality.json, hparams.json and training.json in that folder
#
# The candidate is finished as ship.sh would ship it, in a copy of this checkout's HEAD at WORK (the
# statistics corpus "editkit-teach" is the people of the model in editkit/assets/editkit-teach, so it
# has to sit there), with the shipped editing hyperparameters (editkit/teaching/teach_hparams.json).
# Results: WORK/n1024/{rome,batch}.jsonl and WORK/n1024/intervals.md.
set -euo pipefail
CAND=$(cd "$1" && pwd)
WORK=$2
SAVE=${3:+$(mkdir -p "$3" && cd "$3" && pwd)}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ -f "$CAND/model.safetensors" && ! -d "$CAND/_checkpoint" ]] || { echo "confirm.sh: $CAND holds no finished training" >&2; exit 2; }
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
git -C "$ROOT" archive HEAD | tar -x -C "$WORK"
A="$WORK/editkit/assets/editkit-teach"
rm -rf "$A" && mkdir -p "$A"
cp "$CAND"/{model.safetensors,config.json,generation_config.json,tokenizer.json,tokenizer_config.json,splits.json,training.json} "$A"/
# the copy is not beside ../shared: read the data where this checkout does (before 2026-12-08 it
# did not, so its C0 had no Wikipedia: 226,644 tokens of biographies instead of 400,000 tokens)
DATA=${EDITKIT_DATA:-$(cd "$ROOT" && python -c 'from editkit.paths import data_dir; print(data_dir())')}
cd "$WORK"
export OMP_NUM_THREADS=1 PYTHONPATH="$WORK" EDITKIT_DATA="$DATA"
bash benchmarks/teaching/ship.sh
mkdir -p n1024
rome() { python -m editkit.cli sweep --n 1024 --batch-sizes 1 --objectives rome --strategies single --rows \
    --no-progress --out n1024/rome.jsonl > n1024/rome.log 2>&1; }
batch() { python -m editkit.cli sweep --n 1024 --batch-sizes 256 --objectives memit --strategies spread,single --rows \
    --no-progress --out n1024/batch.jsonl > n1024/batch.log 2>&1; }
if [[ ${JOBS:-2} == 1 ]]; then rome; batch; else rome & ROME=$!; batch; wait $ROME; fi
python benchmarks/ablation/intervals.py --paired n1024/rome.jsonl n1024/batch.jsonl | tee n1024/intervals.md
if [[ -n "$SAVE" ]]; then
    python - "$SAVE" <<'PY'
import json, shutil, sys
from pathlib import Path
save = Path(sys.argv[1])
for name in ("rome.jsonl", "batch.jsonl"):
    runs = [json.loads(line) for line in open(Path("n1024") / name)]
    (save / name).write_text("".join(json.dumps({k: v for k, v in r.items() if k != "rows"}) + "\n" for r in runs))
shutil.copy("n1024/intervals.md", save)
for name in ("quality.json", "hparams.json", "training.json"):
    shutil.copy(Path("editkit/assets/editkit-teach") / name, save)
PY
fi
