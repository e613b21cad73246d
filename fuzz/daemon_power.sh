#!/bin/sh
# Power of the daemon fuzz target (`make fuzz-power`): from an empty corpus, with a fixed seed and
# at most RUNS inputs each (default 3000), it finds each of three faults of the reference daemon
# (a failing verdict naming the invariant the fault breaks), and finds nothing against the
# correct reference daemon in the same budget. Strict, as `prop`'s power tests are: a daemon
# that sends [DONE] after a truncated upstream is a non-strict finding otherwise.
#
# Inputs are at most 64 bytes from the first run (-len_control=0): enough for a case of a few
# chunks, and what makes three thousand runs reach the cases that matter.
set -u
runs=${1:-3000}
work=$(mktemp -d "${TMPDIR:-/tmp}/streamcheck-fuzz-power.XXXXXX")
trap 'rm -rf "$work"' EXIT
flags="-print_final_stats=1 -seed=1 -runs=$runs -max_len=64 -len_control=0 -dict=fuzz/daemon.dict -artifact_prefix=$work/"
failed=0

# run NAME [FAULT]: fuzzes with an empty corpus; the output goes to $work/NAME.log.
run() {
    mkdir -p "$work/corpus-$1"
    # shellcheck disable=SC2086 # $flags is a list of libFuzzer flags
    env STREAMCHECK_FUZZ_STRICT=1 ${2:+STREAMCHECK_FUZZ_FAULT=$2} \
        cargo fuzz run -s none daemon "$work/corpus-$1" -- $flags >"$work/$1.log" 2>&1
}

# hunt FAULT INVARIANT…: the run must stop on a failing verdict that names one of them.
hunt() {
    fault=$1
    shift
    run "$fault" "$fault"
    found=$(grep -m 1 '^==== streamcheck: the daemon broke ' "$work/$fault.log")
    for invariant in "$@"; do
        case "$found" in
        *"broke $invariant"* | *", $invariant"*)
            at=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$fault.log")
            found=${found#==== streamcheck: the daemon }
            echo "fuzz-power: --fault $fault found at run ${at:-?} of $runs: ${found% ====}"
            return
            ;;
        esac
    done
    tail -n 30 "$work/$fault.log"
    echo "fuzz-power: --fault $fault not found in $runs runs (wanted: $*)"
    failed=1
}

hunt lossy-utf8 content "valid UTF-8"
hunt naive-upstream-parser content "[DONE]" "no error event"
hunt done-after-abort "no [DONE]"

if run correct && grep -q "^Done $runs runs" "$work/correct.log"; then
    echo "fuzz-power: the correct reference daemon passed $runs runs"
else
    tail -n 40 "$work/correct.log"
    echo "fuzz-power: the correct reference daemon failed within $runs runs"
    failed=1
fi
exit $failed
