#!/usr/bin/env bash
# Run the streamcheck suite against streaming-daemon.
# Usage: GO_DAEMON=/path/to/streaming-daemon integration/go_test.sh [FORMAT] [CATEGORY]
DAEMON_NAME=go
DAEMON_VAR=GO_DAEMON
DAEMON_HINT=streaming-daemon
source "$(dirname "$0")/common.sh"
daemon_start() {
    exec "$DAEMON_PATH" -socket "$DAEMON_SOCKET" -socket-mode 0666 -backend openai
}
run_suite "$@"
