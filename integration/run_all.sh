#!/usr/bin/env bash
# `make test`: the suite against the reference daemon and every configured daemon, then a
# summary table. Exit status 1 if any daemon failed, 0 otherwise (skipped daemons don't fail).
set -uo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
declare -a rows
status=0
for d in ref uring go rust php swoole swow python_http2; do
    echo "=== $d ==="
    "$DIR/${d}_test.sh" "${FORMAT:-human}" "${CATEGORY:-}"
    rc=$?
    case $rc in
        0) rows+=("$d|pass") ;;
        77) rows+=("$d|skipped (not configured)") ;;
        1) rows+=("$d|FAILED"); status=1 ;;
        *) rows+=("$d|ERROR (exit $rc)"); status=1 ;;
    esac
done
echo
printf '%-14s %s\n' daemon result
printf '%-14s %s\n' ------ ------
for r in "${rows[@]}"; do printf '%-14s %s\n' "${r%%|*}" "${r#*|}"; done
exit $status
