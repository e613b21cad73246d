#!/usr/bin/env bash
# Run the streamcheck suite against streaming-daemon-rs.
# Usage: RUST_DAEMON=/path/to/streaming-daemon-rs integration/rust_test.sh [FORMAT] [CATEGORY]
DAEMON_NAME=rust
DAEMON_VAR=RUST_DAEMON
DAEMON_HINT=streaming-daemon-rs
source "$(dirname "$0")/common.sh"
daemon_start() {
    DAEMON_SOCKET_MODE=0666 exec "$DAEMON_PATH" --socket "$DAEMON_SOCKET" --backend openai
}
run_suite "$@"
