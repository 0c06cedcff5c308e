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
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --quiet-logs) QUIET=1 ;;
    *) echo "bench-replicas.sh: unknown option $arg (--no-build, --quiet-logs)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
die() { echo "bench-replicas.sh: $*" >&2; exit 1; }
note() { echo "==> $*" >&2; }

. "$ROOT/scripts/lib/pg.sh"
[ -x "$(pg_bin)/initdb" ] || die "PostgreSQL not found (apt-get install postgresql)"
if [ "$BUILD" = 1 ]; then
  note "cargo build --release --bin sgbridge --example writes"
  cargo build --release --bin sgbridge --example writes >&2
fi
BIN=$ROOT/target/release/sgbridge
LOAD=$ROOT/target/release/examples/writes

WORK=$(mktemp -d)
cleanup() {
  stop_all
  pg_stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

pg_start "$WORK/pg" || die "PostgreSQL did not start"
export SGBRIDGE_BENCH_KEY=dev-api-key
psql_reset() { pg_psql -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null; }

# The shipped logging (access lines at info to stderr, audit records to
# stdout and, with a durable store, into it), as users run it; with
# --quiet-logs, level warn and audit off, which raises every figure.
LOGGING='# The shipped logging: access lines at info, audit records to stdout.'
if [ "$QUIET" = 1 ]; then
  note "--quiet-logs: every replica logs at warn with audit off (higher figures than the defaults)"
  LOGGING='[audit]
target = "off"
[log]
level = "warn"'
fi
COMMON="[server]
listen = \"127.0.0.1:0\"
shutdown_delay_s = 0
$LOGGING
[wait]
poll_ms = 5
max_poll_ms = 20"

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

# The floor: what this PostgreSQL commits durably per second at the same
# concurrency, one single-row INSERT per transaction (pgbench, same
# cluster, same fsync). A write that must be durable before it is
# answered cannot go faster than one such commit.
note "floor: pgbench, $CONC clients, one INSERT per transaction, $PHASE s"
pg_psql -c 'CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text NOT NULL)' >/dev/null
echo "INSERT INTO bench_floor (body) VALUES (repeat('x', 200));" >"$WORK/floor.sql"
"$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PGPORT" -U postgres -c "$CONC" -j 2 -T "$PHASE" -f "$WORK/floor.sql" postgres \
  2>/dev/null | tee "$OUT/floor.txt" | grep -E '^tps' >&2 || die "pgbench failed"
pg_psql -c 'DROP TABLE bench_floor' >/dev/null

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
print()
floor = None
for line in open(os.path.join(out, "floor.txt")):
    m = re.match(r"tps = ([\d.]+)", line)
    if m:
        floor = float(m.group(1))
# Issue 28's targets: one replica on postgres against one on memory, same topology.
for topo, target in (("gcore", 0.85), ("embedded", 0.5)):
    base, pg = read(f"{topo}-1-memory.txt"), read(f"{topo}-1-postgres.txt")
    worst = min(pg[op][0] / base[op][0] for op in ("create", "put"))
    what = "CF creates and PUTs" if topo == "gcore" else "embedded backend"
    print(f"target: {what}, postgres ÷ memory, 1 replica, worse of create/put: {worst:.2f}× (≥ {target}: {'ok' if worst >= target else 'MISSED'})")
    if floor:
        best = min(base[op][0] for op in ("create", "put"))
        print(f"  floor: PostgreSQL commits {floor:.0f} single-row transactions/s at {conc} clients = {floor / best:.2f}× of that memory rate"
              f" (the most a write needing one durable commit could reach); postgres reaches {min(pg[op][0] for op in ('create', 'put')) / floor:.2f} of it")
PY
note "raw outputs and table.md in $OUT"
