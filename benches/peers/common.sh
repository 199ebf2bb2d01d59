# Shared by run.sh and instructions.sh (sourced, not run): installing what
# is missing, the nginx backends both scripts route to, and the gateway's
# configuration for them.

# need BINARY PACKAGE: installs PACKAGE from Debian's packages when BINARY
# is missing.
need() {
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
}

# start_backends PORT...: one nginx worker per port on loopback, each
# answering 200 to everything, configured under $WORK; their pids are
# appended to PIDS. Needs NGINX set.
start_backends() {
    local port
    for port in "$@"; do
        mkdir -p "$WORK/nginx-$port"
        cat > "$WORK/nginx-$port/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx-$port/nginx.pid;
error_log $WORK/nginx-$port/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location / { return 200 "backend $port\n"; } }
}
CONF
        "$NGINX" -c "$WORK/nginx-$port/nginx.conf" -g "daemon off;" &
        PIDS+=($!)
    done
}

# foresight_config PORT ADMIN SHADOW: the gateway's TOML on stdout, routing
# by the `sid` cookie to the three BACKENDS, with `[server] workers` from
# FORESIGHT_WORKERS when it is set.
foresight_config() {
    if [ -n "${FORESIGHT_WORKERS:-}" ]; then
        printf '[server]\nworkers = %s\n' "$FORESIGHT_WORKERS"
    fi
    cat <<CONF
[listen]
public = "127.0.0.1:$1"
admin = "127.0.0.1:$2"
[key]
kind = "cookie"
name = "sid"
[shadow]
enabled = $3
[[instance]]
id = "a"
addr = "127.0.0.1:${BACKENDS[0]}"
[[instance]]
id = "b"
addr = "127.0.0.1:${BACKENDS[1]}"
[[instance]]
id = "c"
addr = "127.0.0.1:${BACKENDS[2]}"
CONF
}
