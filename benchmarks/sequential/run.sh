#!/usr/bin/env bash
# Sequential editing on the teaching model: every objective × strategy pair, ENCORE and the
# transforms, 20 batches of 100 edits (2,000), measured every 5 batches. Resumable: rerun it.
#   bash benchmarks/sequential/run.sh A     (or B: the two halves, for two CPU jobs)
#   editkit sequential --report benchmarks/sequential/runs/* --table benchmarks/sequential/table.md --plots benchmarks/sequential/plots
# RUNS=<folder> writes the runs elsewhere (e.g. when running from a snapshot: git worktree add /tmp/bench HEAD).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
R=${RUNS:-benchmarks/sequential/runs}
run() { name=$1; shift; [ -f "$R/$name/records.jsonl" ] && grep -q '"stopped"\|"batches": 20,\|"batches": 200,\|"batches": 2000,' "$R/$name/records.jsonl" && { echo "done $name (before)"; return; }; python -m editkit.cli sequential --batches 20 --batch-size 100 --every 5 --no-progress --out "$R/$name" "$@" > /dev/null; echo "done $name"; }
case "${1:-A}" in
  A)
    run memit-spread --objective memit --strategy spread
    run encore-spread --objective encore --strategy spread
    run alphaedit-spread --objective alphaedit --strategy spread
    run memit-spread-rect --objective memit --strategy spread --transform rect
    run memit-single --objective memit --strategy single
    run alphaedit-single --objective alphaedit --strategy single
    run encore-spread-lam10 --objective encore --strategy spread --hparam mom2_weight=10
    ;;
  B)
    run emmet-spread --objective emmet --strategy spread
    run memit-pmet --objective memit --strategy pmet
    run memit-spread-prune --objective memit --strategy spread --transform prune
    run emmet-single --objective emmet --strategy single
    run encore-single --objective encore --strategy single
    run rome-single-b1 --objective rome --strategy single --batch-size 1 --batches 200 --every 50
    ;;
  C)  # the same λ as the tuned MEMIT of that strategy, so that the rule (not λ) is what differs
    run memit-pmet-lam10 --objective memit --strategy pmet --hparam mom2_weight=10
    run encore-single-lam100 --objective encore --strategy single --hparam mom2_weight=100
    run memit-spread-lam20000 --objective memit --strategy spread --hparam mom2_weight=20000
    run rome-single-b1-2000 --objective rome --strategy single --batch-size 1 --batches 2000 --every 500
    ;;
  D)
    run rome-spread-b1 --objective rome --strategy spread --batch-size 1 --batches 200 --every 50
    ;;
esac
