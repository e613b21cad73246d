#!/usr/bin/env bash
# `make test`: the suite against the reference daemon and every configured daemon, then a
# summary table with each daemon's verdict counts (a skipped scenario shows there). Exit
# status 1 if any daemon failed, 0 otherwise (daemons not configured don't fail).
set -uo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
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
done
echo
printf '%-14s %-26s %s\n' daemon result scenarios
printf '%-14s %-26s %s\n' ------ ------ ---------
for r in "${rows[@]}"; do
    IFS='|' read -r name result counts <<<"$r"
    printf '%-14s %-26s %s\n' "$name" "$result" "$counts"
done
exit $status
