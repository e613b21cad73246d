#!/bin/sh
# The reference daemon's capacity on this machine, and that of a fault mode that degrades with
# load (head-of-line-blocking: one global lock across client writes), under the same objectives,
# one after the other in one run (issue 13).
#
#   benches/capacity.sh [STREAMCHECK]      (default target/release/streamcheck; `make bench`)
#
# SLO, START, MAX, HOLD override the objectives (space-separated), the first step, the most
# streams tried and each step's held part.
set -eu

BIN=${1:-target/release/streamcheck}
[ -x "$BIN" ] || { echo "capacity.sh: $BIN is not built: run \`cargo build --release\`" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SLO=${SLO:-"ttfb.p99<250ms relay.p99<50ms failures=0"}
START=${START:-250}
HOLD=${HOLD:-5s}

slos=""
for s in $SLO; do slos="$slos --slo $s"; done
max=${MAX:+--max $MAX}

for fault in "" head-of-line-blocking; do
    echo "== reference daemon${fault:+ --fault $fault}"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the objectives and --max are separate words on purpose
    "$BIN" capacity --daemon-cmd "$BIN ref-daemon --socket {socket}${fault:+ --fault $fault}" \
        $slos --start "$START" --hold "$HOLD" $max || true
    echo "(took $(( $(date +%s) - start )) s)"
    echo
done
