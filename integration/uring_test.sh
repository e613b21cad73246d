#!/usr/bin/env bash
# Run the streamcheck suite against streaming-daemon-uring.
# Usage: URING_DAEMON=/path/to/streaming-daemon-uring integration/uring_test.sh [FORMAT] [CATEGORY]
DAEMON_NAME=uring
DAEMON_VAR=URING_DAEMON
DAEMON_HINT=streaming-daemon-uring
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "exec $(sh_quote "$DAEMON_PATH") --socket {socket} --socket-mode 0666"
}
run_suite "$@"
