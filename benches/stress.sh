#!/bin/sh
# Client-cost benchmark of `streamcheck stress` (issue 7): 10,000 concurrent streams of 18 events
# 50 ms apart against the reference daemon, integrity checked on every stream. (The mock's 18
# chunks, plus the chunk carrying each stream's nonce, relayed with the final chunk and [DONE]:
# 21 events per stream, 210,000 in all.)
#
#   benches/stress.sh [STREAMCHECK]        (default target/release/streamcheck; `make bench`)
#
# The mock API and the reference daemon run as processes of their own, started here, so that
# only the client is measured: `/usr/bin/time -v` around `streamcheck stress` alone gives its CPU
# seconds (user + sys) and peak RSS, and the report gives integrity, the ramp-up schedule error
# (schedule_lag) and the client's own accounting. Knobs (environment): CONNECTIONS (10000),
# RAMP_UP (900ms: every stream is open before the first ends, so all 10,000 are concurrent),
# CHUNK_COUNT (18), CHUNK_DELAY_MS (50), OUT (directory for the reports, default a temporary one
# that is kept).
#
# The daemon's upstream is cleartext HTTP/2 (h2c, OPENAI_HTTP2_ENABLED=true): one connection for
# every stream, as with TLS and ALPN h2, without spending the machine's CPU on TLS for the two
# processes that are not measured.
set -eu

BIN=${1:-target/release/streamcheck}
CONNECTIONS=${CONNECTIONS:-10000}
RAMP_UP=${RAMP_UP:-900ms}
CHUNK_COUNT=${CHUNK_COUNT:-18}
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-50}
# CLIENT_PREFIX: a command to run the client under, e.g. 'nice -n -10' to give it priority over
# the daemon and the mock when they share few cores.
CLIENT_PREFIX=${CLIENT_PREFIX:-}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/streamcheck-bench.XXXXXX")}
mkdir -p "$OUT"

[ -x "$BIN" ] || { echo "stress.sh: $BIN is not built: run \`cargo build --release\`" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "stress.sh: needs GNU time (/usr/bin/time -v)" >&2; exit 2; }
ulimit -n "$(ulimit -H -n)"

MOCK_PID=
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    true
}
trap cleanup EXIT INT TERM

# The mock's log keeps every request of the run, for the relay-latency join.
"$BIN" mock-api --listen 127.0.0.1:0 --quiet --chunk-count "$CHUNK_COUNT" \
    --chunk-delay-ms "$CHUNK_DELAY_MS" --log-capacity "$CONNECTIONS" >"$OUT/mock.out" 2>&1 &
MOCK_PID=$!
URL=
i=0
while [ -z "$URL" ] && [ $i -lt 100 ]; do
    # The mock's shell may not have created its output file yet.
    URL=$(sed -n 's/^url: //p' "$OUT/mock.out" 2>/dev/null || true)
    [ -n "$URL" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$URL" ] || { echo "stress.sh: the mock did not start:" >&2; cat "$OUT/mock.out" >&2; exit 2; }

SOCKET="$OUT/daemon.sock"
OPENAI_API_BASE=$URL OPENAI_API_KEY=bench OPENAI_HTTP2_ENABLED=true \
    "$BIN" ref-daemon --socket "$SOCKET" >"$OUT/daemon.log" 2>&1 &
DAEMON_PID=$!
i=0
while [ ! -S "$SOCKET" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$SOCKET" ] || { echo "stress.sh: the daemon did not start:" >&2; cat "$OUT/daemon.log" >&2; exit 2; }

echo "streamcheck stress: $CONNECTIONS concurrent streams of $CHUNK_COUNT events ${CHUNK_DELAY_MS} ms apart, ramp-up $RAMP_UP"
echo "mock $URL (PID $MOCK_PID), reference daemon PID $DAEMON_PID; reports in $OUT"
set +e
/usr/bin/time -v -o "$OUT/time.txt" $CLIENT_PREFIX "$BIN" stress --socket "$SOCKET" --backend "$URL" \
    --daemon-pid "$DAEMON_PID" --connections "$CONNECTIONS" --concurrency "$CONNECTIONS" \
    --ramp-up "$RAMP_UP" --quiet --format json -o "$OUT/report.json"
STATUS=$?
set -e
[ -s "$OUT/report.json" ] || { echo "stress.sh: no report (exit $STATUS)" >&2; cat "$OUT/time.txt" >&2; exit 2; }

USER_S=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$OUT/time.txt")
SYS_S=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$OUT/time.txt")
RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$OUT/time.txt")
echo
echo "client (the streamcheck stress process alone, /usr/bin/time -v):"
awk -v u="$USER_S" -v s="$SYS_S" -v r="$RSS_KB" 'BEGIN {
    printf "  CPU %.2f s (user %.2f + sys %.2f), peak RSS %.1f MB (%d KiB)\n", u + s, u, s, r * 1024 / 1e6, r }'
if command -v jq >/dev/null 2>&1; then
    jq -r '
      def ms: . / 1e6 | tostring | .[0:6];
      "integrity: " + (if .integrity.held then "held" else "FAILED" end)
        + " (" + (.integrity.failed | tostring) + " of " + (.run.judged | tostring) + " streams failed; leak: " + .integrity.leak.verdict + ")",
      "peak open streams: " + (.run.peak_open | tostring) + ", events: " + (.run.events | tostring),
      (.latency[] | select(.name == "schedule_lag") |
        "ramp-up schedule error: max " + (.max_ns | ms) + " ms, p99 " + (.p99_ns | ms) + " ms"),
      "ramp-up: planned " + (.run.ramp_planned_ms | tostring) + " ms, last start at " + (.run.ramp_actual_ms // "-" | tostring) + " ms",
      (if .limits.stopped_by then "stopped by: " + .limits.stopped_by.detail else empty end),
      "client accounting: loop thread " + (.client.cpu_seconds_loop_thread | tostring | .[0:5]) + " CPU-s, process "
        + (.client.cpu_seconds_process_total | tostring | .[0:5]) + " CPU-s (during the run: user "
        + (.client.cpu_user_s | tostring | .[0:5]) + " + sys " + (.client.cpu_sys_s | tostring | .[0:5]) + "), "
        + ((.client.rss_per_open_stream_bytes // 0) / 1024 | tostring | .[0:5]) + " KiB per open stream",
      "client loop thread: busy " + (.client.ring_thread_busy_fraction * 100 | floor | tostring) + "% of the run, "
        + (.client.ring_thread_busy_peak * 100 | floor | tostring) + "% in its busiest 100 ms, saturated for "
        + (.client.ring_thread_saturated_s | tostring) + " s",
      (if .limits.backlog_full > 0 then "daemon accept backlog full for " + (.limits.backlog_full | tostring)
        + " handoffs (the daemon did not accept as fast as the schedule started them)" else empty end),
      (.latency[] | select(.name == "relay" or .name == "first_event" or .name == "inter_event_gap") |
        .name + ": p50 " + (.p50_ns | ms) + " ms, p99 " + (.p99_ns | ms) + " ms, max " + (.max_ns | ms) + " ms"),
      (if .daemon then "reference daemon: " + (.daemon.cpu_seconds | tostring) + " CPU-s, peak "
        + (.daemon.peak.fds | tostring) + " fds, " + (.daemon.peak.rss_bytes / 1e6 | tostring | .[0:5]) + " MB peak RSS" else empty end)
    ' "$OUT/report.json"
else
    echo "(install jq for the figures from $OUT/report.json)"
fi
exit "$STATUS"
