#!/bin/sh
# Peak memory of streamcheck against the reference daemon's resource-abuse fault modes (issue 10):
# the whole catalog (`run`), 8 generated cases (`prop`) and 200 concurrent streams (`stress`),
# each against a daemon that sends an endless stream, one 1 GiB line, two million tiny events or a
# 10 MiB head, and the correct daemon for comparison.
#
#   benches/hostile.sh [STREAMCHECK]      (default target/release/streamcheck; `make bench`)
#
# Peak memory is the streamcheck process's own VmHWM (the kernel's high-water mark of its resident
# set), read from /proc every 20 ms while it runs: the daemon it starts is not counted.
set -eu

BIN=${1:-target/release/streamcheck}
[ -x "$BIN" ] || { echo "hostile.sh: $BIN is not built: run \`cargo build --release\`" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
OUT=$(mktemp -d "${TMPDIR:-/tmp}/streamcheck-hostile.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# peak LABEL ARGS...: runs streamcheck ARGS, prints LABEL, seconds, peak KiB and exit status.
peak() {
    label=$1
    shift
    start=$(date +%s.%N)
    "$BIN" "$@" >"$OUT/out" 2>"$OUT/err" &
    pid=$!
    hwm=0
    while kill -0 "$pid" 2>/dev/null; do
        v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
        sleep 0.02
    done
    status=0
    wait "$pid" || status=$?
    end=$(date +%s.%N)
    printf '%-42s %6.1f s %8d KiB  exit %d\n' "$label" "$(echo "$end - $start" | bc)" "$hwm" "$status"
}

for fault in none endless-stream giant-line event-flood huge-head; do
    if [ "$fault" = none ]; then
        daemon="$BIN ref-daemon --socket {socket}"
    else
        daemon="$BIN ref-daemon --socket {socket} --fault $fault"
    fi
    peak "run (47 scenarios), $fault" run --daemon-cmd "$daemon"
    peak "prop (8 cases), $fault" prop --daemon-cmd "$daemon" --cases 8 --max-shrink-time 5 \
        --regressions "$OUT/regressions.txt"
    peak "stress -n 200 -c 200, $fault" stress --daemon-cmd "$daemon" -n 200 -c 200 \
        --timeout 10s --settle 1s --quiet
done
