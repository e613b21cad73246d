#!/usr/bin/env bash
# Run the streamcheck suite against the built-in reference daemon.
# Usage: integration/ref_test.sh [FORMAT] [CATEGORY]   (REF_FAULT=NAME runs a fault mode)
DAEMON_NAME=ref${REF_FAULT:+-$REF_FAULT}
DAEMON_VAR=STREAMCHECK
source "$(dirname "$0")/common.sh"
daemon_start() {
    exec "$STREAMCHECK" ref-daemon --socket "$DAEMON_SOCKET" --socket-mode 0666 ${REF_FAULT:+--fault "$REF_FAULT"}
}
run_suite "$@"
