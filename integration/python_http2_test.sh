#!/usr/bin/env bash
# Run the streamcheck suite against streaming_daemon_async.py.
# Usage: PYTHON_DAEMON=/path/to/streaming_daemon_async.py integration/python_http2_test.sh [FORMAT] [CATEGORY]
DAEMON_NAME=python-http2
DAEMON_VAR=PYTHON_DAEMON
DAEMON_HINT=streaming_daemon_async.py
source "$(dirname "$0")/common.sh"
daemon_command() {
    echo "OPENAI_HTTP2_ENABLED=true exec python3 $(sh_quote "$DAEMON_PATH") -s {socket} -m 0666 --backend openai"
}
run_suite "$@"
