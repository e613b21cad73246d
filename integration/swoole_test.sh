#!/usr/bin/env bash
# Run the streamcheck suite against streaming_daemon.php.
# Usage: SWOOLE_DAEMON=/path/to/streaming_daemon.php integration/swoole_test.sh [FORMAT] [CATEGORY]
DAEMON_NAME=swoole
DAEMON_VAR=SWOOLE_DAEMON
DAEMON_HINT=streaming_daemon.php
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "exec php $(sh_quote "$DAEMON_PATH") --socket {socket} --mode 0666 --backend openai"
}
run_suite "$@"
