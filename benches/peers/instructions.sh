#!/usr/bin/env bash
# Instructions per request of a foresight-gateway build, counted by callgrind.
#
#   bash benches/peers/instructions.sh BINARY [SHADOW] [N]
#
# BINARY is a release gateway, ideally built with line tables into a
# separate target folder (the release profile stays as it is):
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p foresight-gateway --target-dir ../perf-target
# SHADOW is `false` (default) or `true` (the default shadow policy). Starts
# three nginx backends on loopback and, twice, the gateway under
# `valgrind --tool=callgrind` with the configuration of run.sh, sends it N
# and then 2N keep-alive GETs (N = 20000 by default) from 8 `ab` clients
# of 8 connections, each with its own `sid` cookie, and stops it with
# SIGTERM. Prints both totals and (I(2N) - I(N)) / N, which leaves out
# start-up and shutdown. The callgrind files stay in the printed folder for
# `callgrind_annotate`.
set -euo pipefail
BIN=$(realpath "$1")
SHADOW=${2:-false}
N=${3:-20000}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need nginx nginx-light
need ab apache2-utils
need valgrind valgrind
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

BACKENDS=(19201 19202 19203)
start_backends "${BACKENDS[@]}"

foresight_config 18013 18113 "$SHADOW" > "$WORK/gateway.toml"

# count REQUESTS: prints the instructions of one run of REQUESTS requests.
count() {
    local out="$WORK/callgrind.$1"
    RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$out" \
        --log-file="$out.log" "$BIN" --config "$WORK/gateway.toml" 2>"$out.err" &
    local gateway=$!
    for _ in $(seq 600); do
        grep -q LISTENING "$out.err" 2>/dev/null && break
        sleep 0.2
    done
    local clients=()
    for i in 1 2 3 4 5 6 7 8; do
        ab -q -k -n $(($1 / 8)) -c 8 -C "sid=session-$i" http://127.0.0.1:18013/ > "$out.ab-$i" 2>&1 &
        clients+=($!)
    done
    for pid in "${clients[@]}"; do wait "$pid"; done
    kill -TERM "$gateway"
    wait "$gateway" || true
    local failed
    failed=$(awk '/Failed requests|Non-2xx/ { s += $3 } END { print s + 0 }' "$out".ab-*)
    if [ "$failed" != 0 ]; then
        echo "$failed requests failed (see $out.ab-*)" >&2
        exit 1
    fi
    awk '/Collected/ { print $4 }' "$out.log"
}

once=$(count "$N")
twice=$(count $((2 * N)))
echo "shadow=$SHADOW I($N)=$once I($((2 * N)))=$twice per request: $(( (twice - once) / N ))"
echo "callgrind files: $WORK"
