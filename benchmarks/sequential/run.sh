#!/usr/bin/env bash
# Sequential editing on the teaching model: every objective × strategy pair, ENCORE and the
# transforms, 20 batches of 100 edits (2,000), measured every 5 batches. Resumable: rerun it.
#   bash benchmarks/sequential/run.sh A     (or B: the two halves, for two CPU jobs)
#   editkit sequential --report benchmarks/sequential/runs/* --table benchmarks/sequential/table.md --plots benchmarks/sequential/plots
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
R=benchmarks/sequential/runs
run() { name=$1; shift; python -m editkit.cli sequential --batches 20 --batch-size 100 --every 5 --no-progress --out "$R/$name" "$@" > /dev/null; echo "done $name"; }
case "${1:-A}" in
  A)
    run memit-spread --objective memit --strategy spread
    run encore-spread --objective encore --strategy spread
    run alphaedit-spread --objective alphaedit --strategy spread
    run memit-spread-rect --objective memit --strategy spread --transform rect
    run memit-single --objective memit --strategy single
    run alphaedit-single --objective alphaedit --strategy single
    ;;
  B)
    run emmet-spread --objective emmet --strategy spread
    run memit-pmet --objective memit --strategy pmet
    run memit-spread-prune --objective memit --strategy spread --transform prune
    run emmet-single --objective emmet --strategy single
    run encore-single --objective encore --strategy single
    run rome-single-b1 --objective rome --strategy single --batch-size 1 --batches 200 --every 50
    ;;
esac
