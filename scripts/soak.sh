#!/usr/bin/env bash
# The soak (issue 26): one gateway (embedded backend) on a durable store under
# a steady write load for DURATION_S (1800), its RSS and its store's size
# sampled every SAMPLE_S (30), to see both reach a plateau. The load client
# is examples/soak.rs (8 workers: create, 3 PUTs, a Gcore rule add, delete).
#
#   scripts/soak.sh                         # SQLite, 30 minutes
#   STORE=postgres scripts/soak.sh          # a throwaway PostgreSQL (initdb)
#   DURATION_S=120 SAMPLE_S=10 scripts/soak.sh   # a quick check that it runs
#
# Prints the sample table and the verdicts; figures go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${STORE:-sqlite}
# Ended tasks are kept this long (backend.embedded.task_ttl_s; the shipped
# 3600 s puts the plateau past an hour: tasks kept grow with rate x TTL).
TASK_TTL_S=${TASK_TTL_S:-300}
# Audit events kept (audit.max_events; the shipped 1,000,000 is ~1.2 GB,
# reached after ~40 min of this load) and PostgreSQL's tombstones
# (store.tombstone_keep_s; shipped 3600): smaller, so the plateau comes
# within the run. Each is a bound you can state: events x ~1.2 KB;
# delete rate x keep.
MAX_EVENTS=${MAX_EVENTS:-100000}
TOMBSTONE_KEEP_S=${TOMBSTONE_KEEP_S:-300}
PORT=${PORT:-18090}
export DURATION_S=${DURATION_S:-1800} SAMPLE_S=${SAMPLE_S:-30} WORKERS=${WORKERS:-8}

cargo build --release --quiet --bin sgbridge --example soak
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${pgctl:-}" ]; then $as_pg "$pgctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

case "$STORE" in
  sqlite)
    store="kind = \"sqlite\"
path = \"$dir/state.db\""
    export DB="$dir/state.db,$dir/state.db-wal"
    ;;
  postgres)
    bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
    pgctl="$bin/pg_ctl"
    as_pg=""
    if [ "$(id -u)" = 0 ]; then chown nobody "$dir"; as_pg="runuser -u nobody --"; fi
    $as_pg "$bin/initdb" --auth=trust -U postgres -D "$dir/pg" >/dev/null
    pgport=$((PORT + 1))
    $as_pg "$pgctl" -w -D "$dir/pg" -o "-p $pgport -k $dir -c listen_addresses=127.0.0.1" -l "$dir/pg.log" start >/dev/null
    export SGBRIDGE_STORE_URL="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
    store="kind = \"postgres\""
    export DB_SQL="$bin/psql -qAt -d '$SGBRIDGE_STORE_URL' -c 'SELECT pg_database_size(current_database())'"
    ;;
  *) echo "STORE is sqlite or postgres" >&2; exit 2 ;;
esac

cat >"$dir/sgbridge.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[backend.embedded]
# Real tasks, short: the load is writes, not waiting.
task_delay_ms = 10
task_ttl_s = $TASK_TTL_S
[audit]
max_events = $MAX_EVENTS
[store]
$store
tombstone_keep_s = $TOMBSTONE_KEEP_S
TOML

# The shipped defaults otherwise: access lines at info, audit to stdout.
target/release/sgbridge serve --config "$dir/sgbridge.toml" >/dev/null 2>"$dir/sgbridge.log" &
gw=$!
pids+=("$gw")
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  sleep 0.1
done
echo "soak: store $STORE, $WORKERS workers, ${DURATION_S} s, a sample every ${SAMPLE_S} s, task_ttl_s $TASK_TTL_S, max_events $MAX_EVENTS, tombstone_keep_s $TOMBSTONE_KEEP_S"
BASE="http://127.0.0.1:$PORT" PID=$gw target/release/examples/soak
