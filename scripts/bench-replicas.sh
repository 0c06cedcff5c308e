#!/usr/bin/env bash
# Issue 14's benchmark: CF creates and PUTs per second at 1 and 3 replicas,
# memory vs postgres store, and the store's added p50 per write, each beside
# one replica on the memory store measured in the same run.
#
# Two topologies:
#   gcore     replicas (CF front end) → one Gcore-semantics backend (a further
#             sgbridge, embedded, tasks of 0 ms): the store holds locks, name
#             reservations and uncertain creates; groups live in the backend;
#   embedded  replicas running the embedded backend themselves (tasks of 0 ms):
#             on postgres the store also holds every group and task.
# Load: examples/writes.rs (CONCURRENCY workers, round-robin over the
# replicas; SECONDS of creates, then SECONDS of PUTs). PostgreSQL is a
# throwaway initdb + pg_ctl cluster (fsync on, as shipped) in a temp dir.
#
#   scripts/bench-replicas.sh              # about 3 minutes after the build
#   SECONDS_PER_PHASE=5 scripts/bench-replicas.sh --no-build
#
# Environment: SECONDS_PER_PHASE (10), CONCURRENCY (16), OUT
# (target/bench-results/replicas-<date>). Needs PostgreSQL's binaries
# (apt-get install postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PHASE=${SECONDS_PER_PHASE:-10}
CONC=${CONCURRENCY:-16}
OUT=${OUT:-$ROOT/target/bench-results/replicas-$(date +%Y%m%d-%H%M%S)}
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0
mkdir -p "$OUT"
die() { echo "bench-replicas.sh: $*" >&2; exit 1; }
note() { echo "==> $*" >&2; }

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL not found (apt-get install postgresql)"
if [ "$BUILD" = 1 ]; then
  note "cargo build --release --bin sgbridge --example writes"
  cargo build --release --bin sgbridge --example writes >&2
fi
BIN=$ROOT/target/release/sgbridge
LOAD=$ROOT/target/release/examples/writes

WORK=$(mktemp -d)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
cleanup() {
  stop_all
  as_pg "$PGBIN/pg_ctl" -m immediate -D "$WORK/pg" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown nobody "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PGPORT=$(free_port)
as_pg "$PGBIN/initdb" --auth=trust -U postgres -D "$WORK/pg" >/dev/null
as_pg "$PGBIN/pg_ctl" -w -D "$WORK/pg" -l "$WORK/pg.log" \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
export SGBRIDGE_STORE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
export SGBRIDGE_BENCH_KEY=dev-api-key
psql_reset() {
  PGOPTIONS="--client-min-messages=warning" "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
}

COMMON='[server]
listen = "127.0.0.1:0"
shutdown_delay_s = 0
[audit]
target = "off"
[log]
level = "warn"
[wait]
poll_ms = 5
max_poll_ms = 20'

# start NAME CONFIG: runs `sgbridge serve`, echoes its base URL (called in
# $(...): the server's stdout must not hold that pipe open; its pid goes
# to a file, a subshell's variables being lost).
start() {
  local name=$1 config=$2
  printf '%s\n' "$config" > "$WORK/$name.toml"
  "$BIN" serve --config "$WORK/$name.toml" > /dev/null 2> "$WORK/$name.log" &
  echo $! >> "$WORK/pids"
  for _ in $(seq 100); do
    local base
    base=$(grep -o 'listening on [^ ]*' "$WORK/$name.log" 2>/dev/null | head -n1 | cut -d' ' -f3)
    [ -n "$base" ] && { echo "$base"; return; }
    sleep 0.1
  done
  die "$name did not start: $(cat "$WORK/$name.log")"
}
stop_all() {
  [ -f "$WORK/pids" ] || return 0
  while read -r p; do
    kill "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done < "$WORK/pids"
  rm -f "$WORK/pids"
}

# scenario TOPOLOGY REPLICAS STORE
scenario() {
  local topo=$1 n=$2 store=$3 backend bases=() cfg
  psql_reset
  if [ "$topo" = gcore ]; then
    backend=$(start backend "$COMMON
[backend.embedded]
task_delay_ms = 0")
    cfg="[backend]
kind = \"gcore\"
[backend.gcore]
base_url = \"$backend\"
project_id = 1
region_id = 1
api_key_env = \"SGBRIDGE_BENCH_KEY\""
  else
    cfg="[backend.embedded]
task_delay_ms = 0"
  fi
  for i in $(seq "$n"); do
    bases+=("$(start "replica-$i" "$COMMON
[store]
kind = \"$store\"
$cfg")")
  done
  local list
  list=$(IFS=,; echo "${bases[*]}")
  note "$topo, $n replica(s), $store store"
  BASES=$list CONCURRENCY=$CONC PHASE_S=$PHASE "$LOAD" | tee "$OUT/$topo-$n-$store.txt" >&2
  stop_all
}

for topo in gcore embedded; do
  scenario "$topo" 1 memory
  scenario "$topo" 1 postgres
  scenario "$topo" 3 postgres
done

# The table: each figure beside the 1-replica memory baseline of its topology.
python3 - "$OUT" "$CONC" "$PHASE" <<'PY' | tee "$OUT/table.md"
import re, sys, os
out, conc, phase = sys.argv[1], sys.argv[2], sys.argv[3]
def read(name):
    res = {}
    for line in open(os.path.join(out, name)):
        m = re.match(r"(\w+): (\d+) req/s, p50 ([\d.]+) ms, p99 ([\d.]+) ms, (\d+) ok, (\d+) errors", line)
        if m:
            res[m.group(1)] = tuple(float(x) for x in m.groups()[1:])
    return res
print(f"CONCURRENCY={conc}, {phase} s per phase, `nproc`={os.cpu_count()}\n")
print("| topology | replicas | store | op | req/s | × baseline | p50 ms | added p50 ms | p99 ms | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for topo in ("gcore", "embedded"):
    base = read(f"{topo}-1-memory.txt")
    for n, store in ((1, "memory"), (1, "postgres"), (3, "postgres")):
        r = read(f"{topo}-{n}-{store}.txt")
        for op in ("create", "put"):
            rps, p50, p99, ok, err = r[op]
            b = base[op]
            print(f"| {topo} | {n} | {store} | {op} | {rps:.0f} | {rps / b[0]:.2f}× | {p50:.2f} | {p50 - b[1]:+.2f} | {p99:.2f} | {err:.0f} |")
PY
note "raw outputs and table.md in $OUT"
