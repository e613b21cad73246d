#!/usr/bin/env bash
# Shared by the per-daemon scripts: start the mock API, start the daemon, wait for its socket,
# run the suite, stop both by PID and clean up on exit. Never kills anything by name.
#
# A per-daemon script sets:
#   DAEMON_NAME    a short name for reports ("go", "uring", ...)
#   DAEMON_VAR     the environment variable that holds the daemon's path ("GO_DAEMON")
#   daemon_start   a function that execs the daemon given $DAEMON_PATH and $DAEMON_SOCKET
# and then calls `run_suite "$@"` with FORMAT and CATEGORY as positional arguments.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMCHECK="${STREAMCHECK:-$ROOT/target/release/streamcheck}"
case "$STREAMCHECK" in /*) ;; *) STREAMCHECK="$ROOT/$STREAMCHECK" ;; esac
MOCK_API_PORT="${MOCK_API_PORT:-28080}"
DAEMON_SOCKET="${DAEMON_SOCKET:-/tmp/streamcheck-${DAEMON_NAME:-daemon}-$$.sock}"
# Exit status 77 means "skipped" to run_all.sh.
SKIP_STATUS=77

WORK="$(mktemp -d /tmp/streamcheck-it.XXXXXX)"
MOCK_PID=""
DAEMON_PID=""

cleanup() {
    local pid
    for pid in "$DAEMON_PID" "$MOCK_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$DAEMON_SOCKET"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "${DAEMON_NAME:-integration}: $*" >&2; exit 2; }

require_streamcheck() {
    [[ -x "$STREAMCHECK" ]] || die "no streamcheck binary at $STREAMCHECK: run 'make build' first"
}

# The daemon's path from its variable; unset means skipped, with what to set.
require_daemon() {
    DAEMON_PATH="${!DAEMON_VAR:-}"
    if [[ -z "$DAEMON_PATH" ]]; then
        echo "${DAEMON_NAME}: skipped: set ${DAEMON_VAR}=/path/to/${DAEMON_HINT:-the daemon} to test it"
        exit "$SKIP_STATUS"
    fi
    [[ -e "$DAEMON_PATH" ]] || die "${DAEMON_VAR}=${DAEMON_PATH} does not exist"
}

start_mock() {
    local out="$WORK/mock.out"
    "$STREAMCHECK" mock-api --tls --listen "127.0.0.1:${MOCK_API_PORT}" --chunk-delay-ms 10 \
        >"$out" 2>"$WORK/mock.err" &
    MOCK_PID=$!
    for _ in $(seq 100); do
        if grep -q '^url: ' "$out" 2>/dev/null; then
            MOCK_URL="$(sed -n 's/^url: //p' "$out" | head -n1)"
            return 0
        fi
        kill -0 "$MOCK_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/mock.err" >&2
    die "the mock API did not start on port ${MOCK_API_PORT} (in use? set MOCK_API_PORT=...)"
}

start_daemon() {
    rm -f "$DAEMON_SOCKET"
    (
        export OPENAI_API_BASE="$MOCK_URL"
        export OPENAI_API_KEY="${OPENAI_API_KEY:-streamcheck-test-key}"
        export OPENAI_INSECURE_SSL=true
        daemon_start
    ) >"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 200); do
        [[ -S "$DAEMON_SOCKET" ]] && return 0
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            tail -n 20 "$WORK/daemon.log" >&2
            die "the daemon exited before creating $DAEMON_SOCKET (log above)"
        fi
        sleep 0.05
    done
    tail -n 20 "$WORK/daemon.log" >&2
    die "the daemon did not create $DAEMON_SOCKET within 10 s (log above)"
}

# run_suite [FORMAT] [CATEGORY]
run_suite() {
    local format="${1:-${FORMAT:-human}}" category="${2:-${CATEGORY:-}}"
    require_streamcheck
    require_daemon
    start_mock
    start_daemon
    local args=(run --socket "$DAEMON_SOCKET" --backend "$MOCK_URL" --daemon-pid "$DAEMON_PID"
                --daemon-name "$DAEMON_NAME" --format "$format")
    [[ -n "$category" ]] && args+=(--category "$category")
    local status=0
    "$STREAMCHECK" "${args[@]}" || status=$?
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "${DAEMON_NAME}: the daemon exited during the run; last lines of its log:" >&2
        tail -n 20 "$WORK/daemon.log" >&2
        [[ $status -eq 0 ]] && status=1
    fi
    return "$status"
}
