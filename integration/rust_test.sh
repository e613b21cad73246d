#!/usr/bin/env bash
# Run the streamcheck suite against streaming-daemon-rs.
# Usage: RUST_DAEMON=/path/to/streaming-daemon-rs integration/rust_test.sh [FORMAT] [CATEGORY]
# DAEMON_METRICS_ENABLED=false turns off its metrics listener (127.0.0.1:9090 by default), which
# a second instance could not open.
DAEMON_NAME=rust
DAEMON_VAR=RUST_DAEMON
DAEMON_HINT=streaming-daemon-rs
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "DAEMON_SOCKET_MODE=0666 DAEMON_METRICS_ENABLED=false exec $(sh_quote "$DAEMON_PATH") --socket {socket} --backend openai"
}
run_suite "$@"
