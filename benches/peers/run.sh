#!/usr/bin/env bash
# Foresight gateway against HAProxy and nginx, side by side in one run.
#
#   bash benches/peers/run.sh [ROUNDS] [SECONDS]
#   FORESIGHT_GATEWAY=path/to/foresight-gateway bash benches/peers/run.sh ...  (another build)
#   FORESIGHT_WORKERS=1 bash benches/peers/run.sh ...  (`[server] workers = 1`, like HAProxy's one thread)
#
# Installs haproxy, nginx and wrk from Debian's packages when missing, starts
# three nginx backends on loopback, then, for each round, drives every
# gateway in turn with the same wrk load (1 thread, 64 connections, 1,000
# session cookies): HAProxy (1 thread, `balance hash req.cook(sid)`,
# `hash-type consistent`), nginx (1 worker, `hash $cookie_sid consistent`)
# and foresight-gateway (release build) with shadowing off and with the
# default shadow policy. Prints req/s, p50 / p99 latency and the gateway's CPU
# seconds per 1,000 requests, as ratios to HAProxy, and ends with
# `foresight shadow-off / haproxy req/s: X.XXx` (the median of the rounds).
set -euo pipefail
ulimit -n 65536 2>/dev/null || true
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

source benches/peers/common.sh
need haproxy haproxy
need nginx nginx-light
need wrk wrk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

cargo build --release -q -p foresight-gateway
GATEWAY=${FORESIGHT_GATEWAY:-target/release/foresight-gateway}

BACKENDS=(19101 19102 19103)
start_backends "${BACKENDS[@]}"

cat > "$WORK/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 30s
frontend fe
    bind 127.0.0.1:18001
    default_backend be
backend be
    balance hash req.cook(sid)
    hash-type consistent
    http-reuse always
    server a 127.0.0.1:${BACKENDS[0]}
    server b 127.0.0.1:${BACKENDS[1]}
    server c 127.0.0.1:${BACKENDS[2]}
CONF

mkdir -p "$WORK/nginx-lb"
cat > "$WORK/nginx-lb/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx-lb/nginx.pid;
error_log $WORK/nginx-lb/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    upstream be {
        hash \$cookie_sid consistent;
        server 127.0.0.1:${BACKENDS[0]};
        server 127.0.0.1:${BACKENDS[1]};
        server 127.0.0.1:${BACKENDS[2]};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:18002;
        location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF

foresight_config 18003 18103 false > "$WORK/shadow-off.toml"
foresight_config 18004 18104 true > "$WORK/shadow-on.toml"

cat > "$WORK/sessions.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/", { ["Cookie"] = "sid=session-" .. (n % 1000) })
end
LUA

cpu_seconds() {
    # user + system CPU seconds of PID
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

declare -A NAMES=([haproxy]=18001 [nginx]=18002 [foresight-shadow-off]=18003 [foresight-shadow-on]=18004)
ORDER=(haproxy nginx foresight-shadow-off foresight-shadow-on)

start() {
    case "$1" in
        haproxy) "$HAPROXY" -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 & ;;
        nginx) "$NGINX" -c "$WORK/nginx-lb/nginx.conf" -g "daemon off;" & ;;
        foresight-shadow-off) RUST_LOG=error "$GATEWAY" --config "$WORK/shadow-off.toml" 2>/dev/null & ;;
        foresight-shadow-on) RUST_LOG=error "$GATEWAY" --config "$WORK/shadow-on.toml" 2>/dev/null & ;;
    esac
    STARTED=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:${NAMES[$1]}/" -H "Cookie: sid=warm" && return 0
        sleep 0.1
    done
    echo "$1 did not start" >&2
    exit 1
}

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for name in "${ORDER[@]}"; do
        start "$name"
        pid=$STARTED
        # For nginx the worker does the work: measure the process group.
        wrk -t1 -c64 -d2s -s "$WORK/sessions.lua" "http://127.0.0.1:${NAMES[$name]}/" >/dev/null
        before=0
        for p in $pid $(pgrep -P "$pid" || true); do before=$(echo "$before + $(cpu_seconds "$p")" | bc -l); done
        out=$(wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/sessions.lua" "http://127.0.0.1:${NAMES[$name]}/")
        after=0
        for p in $pid $(pgrep -P "$pid" || true); do after=$(echo "$after + $(cpu_seconds "$p")" | bc -l); done
        kill "$pid"; wait "$pid" 2>/dev/null || true
        rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
        requests=$(echo "$out" | awk '/requests in/ { print $1 }')
        p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
        p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
        errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ { print }' | tr '\n' ' ')
        cpu=$(echo "($after - $before) * 1000 / $requests" | bc -l)
        printf '%s\t%s\t%s\t%s\t%s\t%.4f\t%s\n' "$round" "$name" "$rps" "$p50" "$p99" "$cpu" "$errors" >> "$results"
        printf 'round %s %-22s %10s req/s  p50 %-8s p99 %-8s cpu s/1k req %.4f %s\n' "$round" "$name" "$rps" "$p50" "$p99" "$cpu" "$errors"
    done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
def ms(v):
    v = v.strip()
    for unit, f in (('us', 1e-3), ('ms', 1.0), ('s', 1e3)):
        if v.endswith(unit):
            return float(v[:-len(unit)]) * f
    return float('nan')
by = {}
for r in rows:
    by.setdefault(int(r[0]), {})[r[1]] = (float(r[2]), ms(r[3]), ms(r[4]), float(r[5]))
names = ['haproxy', 'nginx', 'foresight-shadow-off', 'foresight-shadow-on']
print()
print('| gateway | req/s (median) | req/s / haproxy | p50 ms | p99 ms | p99 / haproxy | CPU s per 1k req | CPU / haproxy |')
print('|---|---|---|---|---|---|---|---|')
for n in names:
    rps = statistics.median(by[r][n][0] for r in by)
    ratio = statistics.median(by[r][n][0] / by[r]['haproxy'][0] for r in by)
    p50 = statistics.median(by[r][n][1] for r in by)
    p99 = statistics.median(by[r][n][2] for r in by)
    p99r = statistics.median(by[r][n][2] / by[r]['haproxy'][2] for r in by)
    cpu = statistics.median(by[r][n][3] for r in by)
    cpur = statistics.median(by[r][n][3] / by[r]['haproxy'][3] for r in by)
    print(f'| {n} | {rps:.0f} | {ratio:.2f} | {p50:.2f} | {p99:.2f} | {p99r:.2f} | {cpu:.4f} | {cpur:.2f} |')
off = statistics.median(by[r]['foresight-shadow-off'][0] / by[r]['haproxy'][0] for r in by)
on = statistics.median(by[r]['foresight-shadow-on'][0] / by[r]['foresight-shadow-off'][0] for r in by)
print(f'\nforesight shadow-on / shadow-off req/s: {on:.2f}x')
print(f'foresight shadow-off / haproxy req/s: {off:.2f}x')
PY
