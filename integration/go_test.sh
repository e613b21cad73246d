#!/usr/bin/env bash
# Run the streamcheck suite against streaming-daemon.
# Usage: GO_DAEMON=/path/to/streaming-daemon integration/go_test.sh [FORMAT] [CATEGORY]
# -metrics-addr '' turns off its metrics listener (127.0.0.1:9090 by default), which a second
# instance could not open.
DAEMON_NAME=go
DAEMON_VAR=GO_DAEMON
DAEMON_HINT=streaming-daemon
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "exec $(sh_quote "$DAEMON_PATH") -socket {socket} -socket-mode 0666 -backend openai -metrics-addr ''"
}
run_suite "$@"
