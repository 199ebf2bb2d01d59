# Shared by run.sh and instructions.sh (sourced, not run): installing what
# is missing, and the nginx backends both scripts route to.

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
