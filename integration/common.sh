#!/usr/bin/env bash
# Shared by the per-daemon scripts. The runner starts everything itself (`run --daemon-cmd`):
# an embedded TLS mock, the daemon, and for 8.3 unreachable_backend a second instance of the
# daemon whose upstream is a closed port; it stops them by process group. So every scenario runs.
#
# A per-daemon script sets:
#   DAEMON_NAME     a short name for reports ("go", "uring", ...)
#   DAEMON_VAR      the environment variable that holds the daemon's path ("GO_DAEMON")
#   daemon_command  a function that prints the shell command starting the daemon given
#                   $DAEMON_PATH, with {socket} where its socket path goes (each instance gets
#                   its own) and the daemon's own environment and socket-mode settings. Every
#                   listener on a fixed port (metrics, profiling) is turned off there: a second
#                   instance could not open it.
# and then calls `run_suite "$@"` with FORMAT and CATEGORY as positional arguments.
#
# The runner gives every instance OPENAI_API_BASE (the mock), OPENAI_API_KEY (yours, or a test
# key) and OPENAI_INSECURE_SSL=true. With STREAMCHECK_SUMMARY=FILE set (run_all.sh does), the
# run's verdict counts are written to FILE for the summary table. FORMAT=html writes the HTML
# report and the JSON report of the same run to REPORT_DIR (default target/reports) as
# DAEMON_NAME.html and DAEMON_NAME.json.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMCHECK="${STREAMCHECK:-$ROOT/target/release/streamcheck}"
case "$STREAMCHECK" in /*) ;; *) STREAMCHECK="$ROOT/$STREAMCHECK" ;; esac
# Exit status 77 means "skipped" to run_all.sh.
SKIP_STATUS=77

die() { echo "${DAEMON_NAME:-integration}: $*" >&2; exit 2; }

# '…' quoting for sh: the text exactly, whatever it contains.
sh_quote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

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

# The verdict counts of a report in FORMAT, as "N OK, N INFORMATIONAL, N NON-STRICT, N FAILED,
# N skipped" (JUnit has no INFORMATIONAL or NON-STRICT: "N scenarios, N FAILED, N skipped").
report_counts() {
    local format="$1" report="$2" flat n
    case "$format" in
        human|tap)
            grep -Eo '[0-9]+ OK, [0-9]+ INFORMATIONAL, [0-9]+ NON-STRICT, [0-9]+ FAILED, [0-9]+ skipped' \
                "$report" | tail -n1 ;;
        json)
            # The run's "counts" object is the document's last one.
            flat="$(tr -d ' \n' <"$report" | sed -n 's/.*"counts":{\([^}]*\)}.*/\1/p')"
            n() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$flat"; }
            echo "$(n ok) OK, $(n informational) INFORMATIONAL, $(n non_strict) NON-STRICT, $(n failed) FAILED, $(n skipped) skipped" ;;
        junit)
            local tests failed skipped
            tests="$(grep -o '<testsuites [^>]*' "$report" | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*')"
            failed="$(grep -o '<testsuites [^>]*' "$report" | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*')"
            skipped="$(grep -o '<testsuite [^>]*' "$report" | grep -o ' skipped="[0-9]*"' | grep -o '[0-9]*' \
                | awk '{ s += $1 } END { print s + 0 }')"
            echo "${tests:-0} scenarios, ${failed:-0} FAILED, ${skipped} skipped" ;;
    esac
}

# Where FORMAT=html writes DAEMON_NAME.html and DAEMON_NAME.json (for `report merge`).
report_dir() {
    local dir="${REPORT_DIR:-target/reports}"
    case "$dir" in /*) ;; *) dir="$ROOT/$dir" ;; esac
    echo "$dir"
}

# run_suite [FORMAT] [CATEGORY]
run_suite() {
    local format="${1:-${FORMAT:-human}}" category="${2:-${CATEGORY:-}}"
    local reports
    reports="$(report_dir)"
    if [[ "$format" == html ]]; then
        # A daemon skipped now leaves no page of an earlier run behind.
        rm -f "$reports/$DAEMON_NAME.html" "$reports/$DAEMON_NAME.json"
    fi
    require_streamcheck
    require_daemon
    local work status
    work="$(mktemp -d /tmp/streamcheck-it.XXXXXX)"
    # shellcheck disable=SC2064 # $work is fixed now
    trap "rm -rf '$work'" EXIT
    local args=(run --daemon-cmd "$(daemon_command)" --daemon-name "$DAEMON_NAME"
                --format "$format")
    [[ -n "$category" ]] && args+=(--category "$category")
    local report="$work/report" counted="$format"
    if [[ "$format" == html ]]; then
        mkdir -p "$reports" || die "cannot create $reports"
        report="$reports/$DAEMON_NAME.json" counted=json
        args+=(-o "$reports/$DAEMON_NAME.html" --json-report "$report")
    fi
    set +e
    "$STREAMCHECK" "${args[@]}" | tee "$work/report"
    status=${PIPESTATUS[0]}  # the runner's, not tee's
    set -e
    if [[ "$format" == html && -s "$report" ]]; then
        echo "${DAEMON_NAME}: $(report_counts json "$report"); report: $reports/$DAEMON_NAME.html"
    fi
    if [[ -n "${STREAMCHECK_SUMMARY:-}" ]]; then
        report_counts "$counted" "$report" >"$STREAMCHECK_SUMMARY" || true
        # For run_all.sh's matrix: which JSON report this run wrote.
        [[ "$format" == html && -s "$report" ]] && echo "$report" >"$STREAMCHECK_SUMMARY.json"
    fi
    return "$status"
}
