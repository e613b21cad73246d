#!/usr/bin/env bash
# `make test`: the suite against the reference daemon and every configured daemon, then a
# summary table with each daemon's verdict counts (a skipped scenario shows there). Exit
# status 1 if any daemon failed, 0 otherwise (daemons not configured don't fail).
# FORMAT=html: each daemon's HTML and JSON reports in REPORT_DIR (default target/reports), and
# matrix.html there: scenarios × daemons, each cell linking to the daemon's page.
set -uo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$DIR/.." && pwd)"
REPORTS="${REPORT_DIR:-target/reports}"
case "$REPORTS" in /*) ;; *) REPORTS="$ROOT/$REPORTS" ;; esac
STREAMCHECK="${STREAMCHECK:-$ROOT/target/release/streamcheck}"
case "$STREAMCHECK" in /*) ;; *) STREAMCHECK="$ROOT/$STREAMCHECK" ;; esac
declare -a jsons
SUMMARY_DIR="$(mktemp -d /tmp/streamcheck-summary.XXXXXX)"
trap 'rm -rf "$SUMMARY_DIR"' EXIT
declare -a rows
status=0
for d in ref uring go rust php swoole swow python_http2; do
    echo "=== $d ==="
    summary="$SUMMARY_DIR/$d"
    STREAMCHECK_SUMMARY="$summary" "$DIR/${d}_test.sh" "${FORMAT:-human}" "${CATEGORY:-}"
    rc=$?
    counts="$(cat "$summary" 2>/dev/null)"
    case $rc in
        0) result=OK ;;
        77) result="not configured" ;;
        1) result=FAILED; status=1 ;;
        *) result="could not run (exit $rc)"; status=1 ;;
    esac
    # A scenario that did not run is called out, not only counted.
    if [[ "$counts" =~ ([1-9][0-9]*)\ skipped ]]; then
        result="$result, ${BASH_REMATCH[1]} SKIPPED"
    fi
    rows+=("$d|$result|$counts")
    # FORMAT=html: the JSON report the script wrote, for the matrix.
    [[ -s "$summary.json" ]] && jsons+=("$(cat "$summary.json")")
done
echo
printf '%-14s %-26s %s\n' daemon result scenarios
printf '%-14s %-26s %s\n' ------ ------ ---------
for r in "${rows[@]}"; do
    IFS='|' read -r name result counts <<<"$r"
    printf '%-14s %-26s %s\n' "$name" "$result" "$counts"
done
if [[ "${FORMAT:-human}" == html ]]; then
    echo
    if ((${#jsons[@]} == 0)); then
        echo "matrix: not written: no daemon wrote a JSON report"
        status=1
    elif "$STREAMCHECK" report merge "${jsons[@]}" -o "$REPORTS/matrix.html"; then
        echo "matrix: $REPORTS/matrix.html (each daemon's report beside it)"
    else
        echo "matrix: not written (the error is above)"
        status=1
    fi
fi
exit $status
