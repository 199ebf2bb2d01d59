#!/usr/bin/env bash
# Regenerates RELIABILITY.md at the repository root from the fault matrix:
# runs each fault test with FORESIGHT_RELIABILITY_OUT set, so that each one
# writes its row, and assembles the rows into the table. A failing test
# still leaves the rows that were measured, and is named under the table;
# the script then exits non-zero.
#
#   bash layers/gateway/tests/reliability.sh
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
rows="$(mktemp -d)"
trap 'rm -rf "$rows"' EXIT
export FORESIGHT_RELIABILITY_OUT="$rows"
cd "$root"

failed=()
run() {
    echo "== $*" >&2
    if ! "$@" >&2; then
        failed+=("\`$*\`")
    fi
}
run cargo test -p foresight-gateway --test fault_matrix -- --test-threads=1
if [ -f layers/token/tests/fault_matrix.rs ]; then
    run cargo test -p foresight-token --test fault_matrix -- --test-threads=1
fi

{
    cat <<'HEADER'
# Reliability

What each fault costs the clients of the composed stack, measured by the
fault matrix (`layers/gateway/tests/fault_matrix.rs`, and
`layers/token/tests/fault_matrix.rs` for the token faults). Regenerate this
file with

```sh
bash layers/gateway/tests/reliability.sh
```

**The stack.** The `foresight-gateway` binary in front of three instance
processes (`alpha`, `beta`, `gamma`), each running SessionMirrorLayer over
`CachedStore<RedisStore>` (pub/sub invalidation, version check) on a Redis
Cluster of three masters and three replicas, all on loopback. The gateway
routes by the session cookie, fails over, and copies requests to the
secondary (every instance shadow-aware). 30 sessions each run a closed
loop: `PUT /n/{n+1}` (idempotent), then `GET /n`, 50 ms apart. The
instance faults hit `beta`.

**Columns.** *Requests*: sent by the load during the whole test.
*Client-visible errors*: requests answered with a status other than 200,
or not answered within 30 s, as the client saw them. *Acknowledged writes
lost*: sessions whose last acknowledged `PUT` does not read back after the
run. *Time to recovery*: from the fault (or from lifting it, where the
notes say so) until every session has completed a write and a read without
an error; it includes the load's own pace, so a fault that costs nothing
still shows a few hundred milliseconds on a busy machine.

**What is asserted.** Instance faults: no client-visible error and no
acknowledged write lost. Gateway restart and Redis faults: no acknowledged
write lost, and no read older than an acknowledged write. Token faults: no
request refused. Numbers come from one debug-build run on a shared 2-core
machine; they vary between runs.

**What the rows show.** An instance that dies or freezes costs its
sessions nothing but a replay on their secondary. A gateway restart costs
the requests sent while no process listens, plus a few sent on a
keep-alive connection at the moment the draining gateway closes it (the
connection ends, or is reset because the request was still unread): a
client that retries an idempotent request on such a connection, or a drain
that lets each idle connection carry one more request with
`Connection: close`, would remove the second kind. With `WAIT 1`, a Redis
master's sessions fail closed (503) from its death until a replica of the
promoted node is back in sync, here when the old master restarts: no
acknowledged write is lost. Redis out entirely costs every request made
meanwhile, each a 503 after the store's 2 s timeout, and nothing after.

| Fault | Requests | Client-visible errors | Acknowledged writes lost | Time to recovery | Notes |
|---|---|---|---|---|---|
HEADER
    cat "$rows"/*.md 2>/dev/null
    if [ ${#failed[@]} -gt 0 ]; then
        echo
        echo "**Failed in the last run** (rows missing above, or measured before the failure):"
        for f in "${failed[@]}"; do echo "- $f"; done
    fi
} > RELIABILITY.md
echo "wrote $root/RELIABILITY.md" >&2
[ ${#failed[@]} -eq 0 ]
