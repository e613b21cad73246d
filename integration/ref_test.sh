#!/usr/bin/env bash
# Run the streamcheck suite against the built-in reference daemon.
# Usage: integration/ref_test.sh [FORMAT] [CATEGORY]   (REF_FAULT=NAME runs a fault mode)
#
# Unlike the published daemons, the reference daemon is started by the runner itself
# (--daemon-cmd): the runner then also starts a second instance with an unreachable upstream,
# so every scenario runs and none is skipped.
DAEMON_NAME=ref${REF_FAULT:+-$REF_FAULT}
DAEMON_VAR=STREAMCHECK
source "$(dirname "$0")/common.sh"
require_streamcheck
args=(run --daemon-name "$DAEMON_NAME" --format "${1:-${FORMAT:-human}}"
      --daemon-cmd "'$STREAMCHECK' ref-daemon --socket {socket} --socket-mode 0666${REF_FAULT:+ --fault $REF_FAULT}")
category="${2:-${CATEGORY:-}}"
[[ -n "$category" ]] && args+=(--category "$category")
"$STREAMCHECK" "${args[@]}"
