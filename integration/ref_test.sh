#!/usr/bin/env bash
# Run the streamcheck suite against the built-in reference daemon.
# Usage: integration/ref_test.sh [FORMAT] [CATEGORY]   (REF_FAULT=NAME runs a fault mode)
DAEMON_NAME=ref${REF_FAULT:+-$REF_FAULT}
DAEMON_VAR=STREAMCHECK
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "exec $(sh_quote "$STREAMCHECK") ref-daemon --socket {socket} --socket-mode 0666${REF_FAULT:+ --fault $(sh_quote "$REF_FAULT")}"
}
run_suite "$@"
