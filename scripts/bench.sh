#!/usr/bin/env bash
# The load benchmarks of BENCHMARKS.md (issue 4), in one run on this machine.
#
# HTTP figures: wrk (pinned to CPU $CLIENT_CPU) against `sgbridge serve`
# (pinned to CPU $SERVER_CPU, embedded backend, fast tasks), each scenario
# beside its baselines, run one server at a time on the same core:
#   - `baseline stub`: a minimal hyper server answering the very bytes (status,
#     content type, body) sgbridge answered for that request;
#   - `baseline proxy`: a minimal hyper pass-through proxy in front of
#     sgbridge (the cost of one plain proxied hop, same core).
# Scenarios, at c=64 and c=1: CF v2, CF v3 and Gcore GET of a 1-rule and a
# 100-rule group; CF PUT that leaves the rules unchanged (no task to wait
# on); the CF list page over LIST_GROUPS × LIST_RULES; /healthz while 16 MB
# PUTs arrive; the page (`/ui/` over LIST_GROUPS groups, a 250-rule group's
# page, c=1 p99). Then `/v3/audit_events` filtered by target over
# EVENTS_N events on SQLite and on PostgreSQL (c=1 p99); the stores
# (scripts/bench-replicas.sh: PostgreSQL vs memory, CF front end and
# embedded backend); `cargo bench --bench translate`; the `lateness`,
# `waiters` and `login_storm` examples.
#
#   scripts/bench.sh                       # everything (about 30-40 minutes)
#   DURATION=2s scripts/bench.sh --no-criterion --no-waiters   # a quick check
#
# The server runs the shipped defaults (access lines at info, audit records
# to stdout; both into the run's sgbridge.log), as users run it; then the
# logging block measures the small GET on three servers side by side:
# defaults, JSON logs + audit to a file, and logs quiet, beside the stub.
# Options: --no-build --no-http --no-proxy --no-list --no-bigput --no-pages
#          --no-events --no-stores --no-criterion --no-lateness --no-waiters
#          --no-login-storm --no-logging --profile
#          --quiet-logs (the main server at level warn, audit off: this raises
#          every HTTP row's sgbridge figure; the logging block says by how much)
# Environment: DURATION (10s), PORT (18080), SERVER_CPU (1), CLIENT_CPU (0),
#   LIST_GROUPS (2000), LIST_RULES (200), LATENESS_N (20), WAITERS_N (10000),
#   EVENTS_N (1000000), STORE_PHASE_S (5: seconds per phase of the stores),
#   OUT (target/bench-results/<date>): raw outputs and the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
LIST_GROUPS=${LIST_GROUPS:-2000}
LIST_RULES=${LIST_RULES:-200}
LATENESS_N=${LATENESS_N:-20}
WAITERS_N=${WAITERS_N:-10000}
EVENTS_N=${EVENTS_N:-1000000}
STORE_PHASE_S=${STORE_PHASE_S:-5}
OUT=${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}

BUILD=1 HTTP=1 PROXY=1 LIST=1 BIGPUT=1 CRITERION=1 LATENESS=1 WAITERS=1 PROFILE=0 LOGGING=1 QUIET=0
PAGES=1 EVENTS=1 STORES=1 STORM=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --no-http) HTTP=0 ;;
    --no-proxy) PROXY=0 ;;
    --no-list) LIST=0 ;;
    --no-bigput) BIGPUT=0 ;;
    --no-criterion) CRITERION=0 ;;
    --no-lateness) LATENESS=0 ;;
    --no-waiters) WAITERS=0 ;;
    --no-pages) PAGES=0 ;;
    --no-events) EVENTS=0 ;;
    --no-stores) STORES=0 ;;
    --no-login-storm) STORM=0 ;;
    --profile) PROFILE=1 ;;
    --no-logging) LOGGING=0 ;;
    --quiet-logs) QUIET=1 ;;
    -h|--help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "bench.sh: $*" >&2; exit 1; }
# The throwaway PostgreSQL of the audit-events block (pg_bin, pg_start, …).
. "$ROOT/scripts/lib/pg.sh"
note() { echo "==> $*" >&2; }

# ------------------------------------------------------------ prerequisites
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "wrk not found: installing it with apt-get"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
      || die "cannot install wrk; install it (apt-get install wrk) and run again"
  else
    die "wrk not found: install it (e.g. apt-get install wrk, brew install wrk) and run again"
  fi
fi
command -v taskset >/dev/null 2>&1 || die "taskset not found: install util-linux (it pins wrk and the servers to CPUs)"
command -v curl >/dev/null 2>&1 || die "curl not found: install it"
CPUS=$(nproc --all 2>/dev/null || nproc)
[ "$CPUS" -gt "$SERVER_CPU" ] && [ "$CPUS" -gt "$CLIENT_CPU" ] \
  || die "need CPUs $CLIENT_CPU (client) and $SERVER_CPU (server); this machine has $CPUS"
[ "$SERVER_CPU" != "$CLIENT_CPU" ] || die "SERVER_CPU and CLIENT_CPU must differ"
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null 2>&1; then
  die "--profile needs perf (apt-get install linux-perf, or linux-tools-\$(uname -r))"
fi

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sgbridge-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    kill "$p" 2>/dev/null || true
  done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    wait "$p" 2>/dev/null || true
  done
  pg_stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ machine
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "nproc: $CPUS"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $7 " GiB available"}')"
  echo "kernel: $(uname -sr)"
  echo "governor: $(cat /sys/devices/system/cpu/cpu$SERVER_CPU/cpufreq/scaling_governor 2>/dev/null || echo n/a)"
  echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
  echo "wrk: $(wrk --version 2>&1 | head -n1 | cut -c1-60)"
  echo "pinning: wrk on CPU $CLIENT_CPU (taskset -c $CLIENT_CPU), servers on CPU $SERVER_CPU (taskset -c $SERVER_CPU)"
  echo "duration per wrk run: $DURATION"
} | tee "$OUT/machine.txt"
echo

# -------------------------------------------------------------------- build
if [ "$BUILD" = 1 ]; then
  note "cargo build --release --bin sgbridge --examples"
  cargo build --release --bin sgbridge --examples
fi
BIN=$ROOT/target/release/sgbridge
EX=$ROOT/target/release/examples
for b in "$BIN" "$EX/baseline" "$EX/populate" "$EX/lateness" "$EX/waiters" "$EX/login_storm" "$EX/writes"; do
  [ -x "$b" ] || die "$b is missing: build first (cargo build --release --bin sgbridge --examples)"
done

# ----------------------------------------------------------------- helpers
BASE=http://127.0.0.1:$PORT
CF_AUTH="bearer dev-admin-token"
GC_AUTH="APIKey dev-api-key"

# wrk's report: one machine-readable line from done().
cat >"$WORK/report.lua" <<'LUA'
local method = os.getenv("WRK_METHOD") or "GET"
local body_file = os.getenv("WRK_BODY_FILE") or ""
wrk.method = method
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

# Start a background process; BG_PID is its pid. Pinned by the caller.
bg() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

wait_http() {
  local url=$1 pid=$2 i
  for i in $(seq 1 200); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Start a baseline (stub or proxy) on the server CPU; BG_ADDR is its address.
start_baseline() {
  local log=$WORK/baseline.$RANDOM.out i
  bg "$log" taskset -c "$SERVER_CPU" "$EX/baseline" "$@"
  for i in $(seq 1 200); do
    if [ -s "$log" ] && BG_ADDR=$(grep -m1 -E '^[0-9.]+:[0-9]+$' "$log"); then
      return 0
    fi
    kill -0 "$BG_PID" 2>/dev/null || { cat "$log" >&2; die "baseline $1 failed to start"; }
    sleep 0.05
  done
  die "baseline $1 did not print its address"
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CPU time (ticks) a process has used: utime + stime.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# wrk_run NAME URL CONNS AUTH [METHOD BODY_FILE [SERVER_PID]]: the BENCH
# line's fields, plus cpu=% of one CPU the server used (with SERVER_PID).
wrk_run() {
  local name=$1 url=$2 conns=$3 auth=$4 method=${5:-GET} body=${6:-} pid=${7:-}
  local out t0 t1 c0 c1
  out=$OUT/wrk-$(echo "$name" | tr -cs 'A-Za-z0-9.=-' '-' | sed 's/-$//').txt
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid") && t0=$(date +%s.%N)
  # The page signs people in with a cookie: AUTH "Cookie: …" is sent as is.
  local header="Authorization: $auth"
  case "$auth" in Cookie:*) header=$auth ;; esac
  if ! WRK_METHOD=$method WRK_BODY_FILE=$body taskset -c "$CLIENT_CPU" \
      wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$WORK/report.lua" -H "$header" "$url" >"$out" 2>&1; then
    cat "$out" >&2
    die "wrk failed for $name"
  fi
  local cpu=-
  if [ -n "$pid" ]; then
    c1=$(cpu_ticks "$pid") t1=$(date +%s.%N)
    cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }')
  fi
  echo "$(grep -m1 '^BENCH ' "$out" | sed 's/^BENCH //') cpu=$cpu"
}

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

guid_of() { grep -o '"guid": *"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'; }

# A CF group: create_group NAME RULES_JSON -> guid
create_group() {
  local resp status
  resp=$(curl -sS -w '\n%{http_code}' -X POST "$BASE/v2/security_groups" \
    -H "Authorization: $CF_AUTH" -H 'Content-Type: application/json' \
    --data-binary "{\"name\":\"$1\",\"rules\":$2}")
  status=$(echo "$resp" | tail -n1)
  [ "$status" = 201 ] || die "creating group $1: HTTP $status: $(echo "$resp" | head -c 300)"
  echo "$resp" | sed '$d' | guid_of
}

# Rules: n distinct 1:1 CF rules (rule i: 10.i.0.0/24, port 1000+i), a JSON array.
rules_json() {
  local n=$1 i sep="" out="["
  for ((i = 0; i < n; i++)); do
    out+="$sep{\"protocol\":\"tcp\",\"destination\":\"10.$((i % 256)).$((i / 256)).0/24\",\"ports\":\"$((1000 + i))\"}"
    sep=","
  done
  echo "$out]"
}

TABLE=$OUT/http-table.txt
row_header() {
  printf '%-32s %3s %11s %10s %6s %8s %8s %8s %6s %6s %11s %6s  %s\n' \
    scenario c "sgbridge/s" "stub/s" ratio "sg p50" "stub p50" "added" "sg cpu" "st cpu" "proxy→sg/s" errors target | tee -a "$TABLE"
  printf '%-32s %3s %11s %10s %6s %8s %8s %8s %6s %6s %11s %6s\n' \
    "" "" "req/s" "req/s" "" "µs" "µs" "µs" "%" "%" "req/s" "" | tee -a "$TABLE"
}

# scenario NAME PATH AUTH [METHOD BODY_FILE]: sgbridge, stub (same bytes),
# proxy → sgbridge, at c=64 and c=1.
scenario() {
  local name=$1 path=$2 auth=$3 method=${4:-GET} body=${5:-}
  local c sg st px=- stub_pid stub_args=() target errs status curl_body=()
  [ -n "$body" ] && curl_body=(-H 'Content-Type: application/json' --data-binary @"$body")
  # The bytes sgbridge answers (and a warm render cache).
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X "$method" -H "Authorization: $auth" \
    ${curl_body[@]+"${curl_body[@]}"} "$BASE$path")
  case "$status" in 2??) ;; *) die "$name: $method $path answered HTTP $status" ;; esac
  for c in 64 1; do
    sg=$(wrk_run "$name-c$c-sgbridge" "$BASE$path" "$c" "$auth" "$method" "$body" "$SG_PID")
    stub_args=(stub --from "$BASE$path" --method "$method" --header "Authorization: $auth")
    [ -n "$body" ] && stub_args+=(--data-file "$body")
    start_baseline "${stub_args[@]}"
    stub_pid=$BG_PID
    st=$(wrk_run "$name-c$c-stub" "http://$BG_ADDR$path" "$c" "$auth" "$method" "$body" "$stub_pid")
    stop "$stub_pid"
    if [ "$PROXY" = 1 ]; then
      px=$(field "$(wrk_run "$name-c$c-proxy" "http://$PROXY_ADDR$path" "$c" "$auth" "$method" "$body")" rps)
    fi
    errs=$(( $(field "$sg" non2xx) + $(field "$sg" sockerr) + $(field "$st" non2xx) + $(field "$st" sockerr) ))
    target=""
    if [ "$method" = GET ] && [ "$c" = 64 ]; then
      target=$(awk -v a="$(field "$sg" rps)" -v b="$(field "$st" rps)" \
        'BEGIN { printf "ratio ≥ 0.5: %s", (a / b >= 0.5) ? "ok" : "MISSED" }')
    elif [ "$method" = GET ] && [ "$c" = 1 ]; then
      target=$(awk -v a="$(field "$sg" p50_us)" -v b="$(field "$st" p50_us)" \
        'BEGIN { printf "added p50 ≤ 50 µs: %s", (a - b <= 50) ? "ok" : "MISSED" }')
    fi
    awk -v n="$name" -v c="$c" -v a="$(field "$sg" rps)" -v b="$(field "$st" rps)" \
        -v pa="$(field "$sg" p50_us)" -v pb="$(field "$st" p50_us)" -v px="$px" -v e="$errs" -v t="$target" \
        -v ca="$(field "$sg" cpu)" -v cb="$(field "$st" cpu)" \
      'BEGIN { printf "%-32s %3s %11.0f %10.0f %6.3f %8d %8d %8d %6s %6s %11s %6d  %s\n", n, c, a, b, a / b, pa, pb, pa - pb, ca, cb, (px == "-" ? "-" : sprintf("%.0f", px)), e, t }' \
      | tee -a "$TABLE"
  done
}

# ------------------------------------------------------------------ server
# server_config PORT LOG_AND_AUDIT_TOML: a bench server's config.
server_config() {
  printf '[server]\nlisten = "127.0.0.1:%s"\nshutdown_delay_s = 0\n\n%s\n\n' "$1" "$2"
  printf '[wait]\npoll_ms = 10\nmax_poll_ms = 100\n\n[backend]\nkind = "embedded"\n\n'
  printf '[backend.embedded]\ntask_delay_ms = 0\n'
}
QUIET_LOGS=$(printf '[log]\nlevel = "warn"\n[audit]\ntarget = "off"')
if [ "$HTTP" = 1 ]; then
  if [ "$QUIET" = 1 ]; then
    note "--quiet-logs: the main server logs at warn with audit off; every sgbridge figure below is higher than on the defaults"
    server_config "$PORT" "$QUIET_LOGS" >"$WORK/sgbridge.toml"
  else
    server_config "$PORT" "# The shipped logging: access lines at info, audit records to stdout." >"$WORK/sgbridge.toml"
  fi
  cp "$WORK/sgbridge.toml" "$OUT/sgbridge.toml"
  curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && die "something already answers on $BASE (set PORT)"
  note "starting sgbridge on $BASE (taskset -c $SERVER_CPU)"
  bg "$OUT/sgbridge.log" taskset -c "$SERVER_CPU" "$BIN" serve --config "$WORK/sgbridge.toml"
  SG_PID=$BG_PID
  wait_http "$BASE/healthz" "$SG_PID" || { cat "$OUT/sgbridge.log" >&2; die "sgbridge did not start"; }

  SMALL_RULES='[{"protocol":"tcp","destination":"10.0.0.1","ports":"443"}]'
  HUNDRED_RULES=$(rules_json 100)
  SMALL=$(create_group bench-small "$SMALL_RULES")
  HUNDRED=$(create_group bench-100 "$HUNDRED_RULES")
  echo "{\"rules\":$SMALL_RULES}" >"$WORK/put-small.json"
  echo "{\"rules\":$HUNDRED_RULES}" >"$WORK/put-100.json"
  count() { curl -sS -H "Authorization: $2" "$BASE$1" | { grep -o "\"$3\"" || true; } | wc -l | tr -d ' '; }
  echo "groups: small $SMALL ($(count "/v2/security_groups/$SMALL" "$CF_AUTH" protocol) CF rules," \
    "$(count "/cloud/v1/securitygroups/1/1/$SMALL" "$GC_AUTH" direction) Gcore rules);" \
    "100-rule $HUNDRED ($(count "/v2/security_groups/$HUNDRED" "$CF_AUTH" protocol) CF rules," \
    "$(count "/cloud/v1/securitygroups/1/1/$HUNDRED" "$GC_AUTH" direction) Gcore rules)" | tee -a "$OUT/machine.txt"

  if [ "$PROXY" = 1 ]; then
    start_baseline proxy --upstream "$BASE"
    PROXY_ADDR=$BG_ADDR
    PROXY_PID=$BG_PID
  fi

  echo
  echo "HTTP: wrk -t1 -c{64,1} -d$DURATION --latency (CPU $CLIENT_CPU); each server alone on CPU $SERVER_CPU" | tee "$TABLE"
  echo "ratio = sgbridge req/s ÷ stub req/s (stub: the same bytes from a minimal hyper server); added = p50 sgbridge − p50 stub;" | tee -a "$TABLE"
  echo "cpu = % of one CPU the server used during the run (below ~95 at c=64: the client, not the server, was the limit)" | tee -a "$TABLE"
  row_header
  scenario "CF v2 GET, 1 rule" "/v2/security_groups/$SMALL" "$CF_AUTH"
  scenario "CF v2 GET, 100 rules" "/v2/security_groups/$HUNDRED" "$CF_AUTH"
  scenario "CF v3 GET, 1 rule" "/v3/security_groups/$SMALL" "$CF_AUTH"
  scenario "CF v3 GET, 100 rules" "/v3/security_groups/$HUNDRED" "$CF_AUTH"
  scenario "Gcore GET, 1 rule" "/cloud/v1/securitygroups/1/1/$SMALL" "$GC_AUTH"
  scenario "Gcore GET, 100 rules" "/cloud/v1/securitygroups/1/1/$HUNDRED" "$GC_AUTH"
  scenario "CF v2 PUT unchanged, 1 rule" "/v2/security_groups/$SMALL" "$CF_AUTH" PUT "$WORK/put-small.json"
  scenario "CF v2 PUT unchanged, 100 rules" "/v2/security_groups/$HUNDRED" "$CF_AUTH" PUT "$WORK/put-100.json"

  if [ "$LOGGING" = 1 ]; then
    echo
    note "logging: the small CF GET at c=64 on three servers (defaults, JSON + audit file, quiet) beside the stub"
    # Three servers on the server CPU, each measured alone while the others
    # idle; three alternating rounds, the mean of each.
    log_servers=(main)
    log_ports=("$PORT")
    log_pids=("$SG_PID")
    log_guids=("$SMALL")
    json_file=$(printf '[log]\nformat = "json"\n[audit]\ntarget = "file"\npath = "%s"' "$WORK/audit.jsonl")
    # (Not packed into one `name|port|toml` string for `read`: it reads one
    # line, and each config is several, so both servers ran the defaults.)
    for name in json-file quiet; do
      case "$name" in
        json-file) port=$((PORT + 1)) toml=$json_file ;;
        quiet) port=$((PORT + 2)) toml=$QUIET_LOGS ;;
      esac
      server_config "$port" "$toml" >"$WORK/sgbridge-$name.toml"
      bg "$OUT/sgbridge-$name.log" taskset -c "$SERVER_CPU" "$BIN" serve --config "$WORK/sgbridge-$name.toml"
      pid=$BG_PID
      wait_http "http://127.0.0.1:$port/healthz" "$pid" || die "sgbridge ($name) did not start"
      log_servers+=("$name")
      log_ports+=("$port")
      log_pids+=("$pid")
      log_guids+=("$(BASE=http://127.0.0.1:$port create_group bench-small "$SMALL_RULES")")
    done
    start_baseline stub --from "$BASE/v2/security_groups/$SMALL" --header "Authorization: $CF_AUTH"
    log_stub=$BG_PID
    log_stub_addr=$BG_ADDR
    declare -A log_sum=()
    for round in 1 2 3; do
      for i in "${!log_servers[@]}"; do
        r=$(wrk_run "logging-$round-${log_servers[$i]}" "http://127.0.0.1:${log_ports[$i]}/v2/security_groups/${log_guids[$i]}" 64 "$CF_AUTH" GET "" "${log_pids[$i]}")
        log_sum[${log_servers[$i]}]=$(awk -v a="${log_sum[${log_servers[$i]}]:-0}" -v b="$(field "$r" rps)" 'BEGIN { print a + b }')
      done
      r=$(wrk_run "logging-$round-stub" "http://$log_stub_addr/v2/security_groups/$SMALL" 64 "$CF_AUTH" GET "" "$log_stub")
      log_sum[stub]=$(awk -v a="${log_sum[stub]:-0}" -v b="$(field "$r" rps)" 'BEGIN { print a + b }')
    done
    stop "$log_stub"
    for i in 1 2; do stop "${log_pids[$i]}"; done
    # Each server ran its own config: no access line from the quiet one,
    # JSON access lines from the other.
    ! grep -q 'sgbridge::access' "$OUT/sgbridge-quiet.log" \
      || die "the quiet server wrote access lines: its config was not applied"
    grep -q '^{.*"target":"sgbridge::access"' "$OUT/sgbridge-json-file.log" \
      || die "the JSON server wrote no JSON access line: its config was not applied"
    main_label=$([ "$QUIET" = 1 ] && echo "main (--quiet-logs)" || echo "defaults")
    awk -v d="${log_sum[main]}" -v j="${log_sum[json-file]}" -v q="${log_sum[quiet]}" -v s="${log_sum[stub]}" -v m="$main_label" \
      'BEGIN { printf "logging, CF v2 GET 1 rule, c=64, mean of 3 rounds (req/s): %s %.0f, JSON + audit file %.0f, quiet %.0f, stub %.0f\n", m, d / 3, j / 3, q / 3, s / 3;
               printf "  %s ÷ stub %.3f (target ≥ 0.6: %s); JSON + audit file ÷ stub %.3f (≥ 0.55: %s); %s ÷ quiet %.3f (≥ 0.9: %s)\n",
                 m, d / s, (d / s >= 0.6) ? "ok" : "MISSED", j / s, (j / s >= 0.55) ? "ok" : "MISSED", m, d / q, (d / q >= 0.9) ? "ok" : "MISSED" }' | tee -a "$TABLE"
    dropped=$(curl -sS "$BASE/metrics" | sed -n 's/^sgbridge_log_lines_dropped_total //p')
    echo "  access lines dropped by the main server in the whole run: ${dropped:-?}" | tee -a "$TABLE"
  fi

  if [ "$PROFILE" = 1 ]; then
    note "profiling sgbridge (perf, $DURATION) under CF v2 GET of the 100-rule group at c=64"
    perf record -F 999 -g -o "$OUT/perf-cf-get-100.data" -p "$SG_PID" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
    PERF_PID=$!
    wrk_run "profile-cf-get-100" "$BASE/v2/security_groups/$HUNDRED" 64 "$CF_AUTH" >/dev/null
    wait "$PERF_PID" || true
    perf report -i "$OUT/perf-cf-get-100.data" --stdio --no-children --sort dso,symbol -g none \
      --percent-limit 0.3 2>/dev/null | grep -v '^$' | cut -c1-160 | head -n 80 >"$OUT/profile-cf-get-100.txt" || true
    echo "profile: $OUT/profile-cf-get-100.txt (perf report -i $OUT/perf-cf-get-100.data for more)"
  fi

  if [ "$BIGPUT" = 1 ]; then
    echo
    note "/healthz while 16 MB CF PUTs arrive"
    # As many copies of one 1:1 rule as fit in CC's 16,777,215 characters:
    # the whole body is read, parsed and validated; the copies fold into one rule.
    rule='{"protocol":"tcp","destination":"10.0.0.1","ports":"443"}'
    copies=$(( (16777215 - 1) / (${#rule} + 1) ))
    awk -v r="$rule" -v n="$copies" 'BEGIN {
      printf "{\"rules\":["; for (i = 0; i < n; i++) { if (i) printf ","; printf "%s", r }; printf "]}" }' >"$WORK/put-16mb.json"
    BIG=$(create_group bench-16mb "$SMALL_RULES")
    big_status=$(curl -sS -o "$WORK/put-16mb.out" -w '%{http_code} %{time_total}' -X PUT \
      -H "Authorization: $CF_AUTH" -H 'Content-Type: application/json' \
      --data-binary @"$WORK/put-16mb.json" "$BASE/v2/security_groups/$BIG")
    echo "16 MB PUT ($(wc -c <"$WORK/put-16mb.json") bytes, $copies rules): HTTP ${big_status% *} in ${big_status#* } s" | tee -a "$TABLE"
    : >"$OUT/put-16mb-times.txt"
    idle=$(wrk_run "healthz-idle" "$BASE/healthz" 1 "$CF_AUTH")
    # PUTs back to back from the client CPU while wrk measures /healthz.
    (
      while :; do
        taskset -c "$CLIENT_CPU" curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT \
          -H "Authorization: $CF_AUTH" -H 'Content-Type: application/json' \
          --data-binary @"$WORK/put-16mb.json" "$BASE/v2/security_groups/$BIG" >>"$OUT/put-16mb-times.txt" || true
      done
    ) &
    PUTTER=$!
    PIDS+=("$PUTTER")
    busy=$(wrk_run "healthz-during-16mb-put" "$BASE/healthz" 1 "$CF_AUTH")
    stop "$PUTTER"
    puts=$(wc -l <"$OUT/put-16mb-times.txt" | tr -d ' ')
    put_p50=$(awk '{print $2}' "$OUT/put-16mb-times.txt" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}')
    awk -v i99="$(field "$idle" p99_us)" -v b99="$(field "$busy" p99_us)" -v bmax="$(field "$busy" max_us)" \
        -v i50="$(field "$idle" p50_us)" -v b50="$(field "$busy" p50_us)" -v n="$puts" -v p="$put_p50" \
      'BEGIN { printf "/healthz c=1 p50/p99/max µs: idle %d/%d, during %d 16 MB PUTs (p50 %s s each) %d/%d/%d; p99 ratio %.1f; p99 < 10 ms: %s\n",
               i50, i99, n, p, b50, b99, bmax, b99 / i99, (b99 < 10000) ? "ok" : "MISSED" }' | tee -a "$TABLE"
  fi

  if [ "$LIST" = 1 ]; then
    echo
    note "populating $LIST_GROUPS groups × $LIST_RULES rules"
    "$EX/populate" --base "$BASE" --groups "$LIST_GROUPS" --rules "$LIST_RULES" --concurrency 32 | tee -a "$TABLE"
    path="/v2/security_groups?results-per-page=1"
    curl -sS -D "$WORK/list.headers" -o "$WORK/list.body" -H "Authorization: $CF_AUTH" "$BASE$path"
    warn_bytes=$({ grep -i '^x-cf-warnings:' "$WORK/list.headers" || true; } | sed 's/^[^:]*: *//' | tr -d '\r\n' | wc -c | tr -d ' ')
    total=$({ grep -o '"total_results": *[0-9]*' "$WORK/list.body" || echo '?'; } | grep -o '[0-9?]*$' | head -n1)
    sg=$(wrk_run "list-c1-sgbridge" "$BASE$path" 1 "$CF_AUTH" GET "" "$SG_PID")
    start_baseline stub --from "$BASE$path" --header "Authorization: $CF_AUTH"
    stub_pid=$BG_PID
    st=$(wrk_run "list-c1-stub" "http://$BG_ADDR$path" 1 "$CF_AUTH" GET "" "$stub_pid")
    stop "$stub_pid"
    awk -v a="$(field "$sg" rps)" -v b="$(field "$st" rps)" -v pa="$(field "$sg" p50_us)" -v pb="$(field "$st" p50_us)" \
        -v p99="$(field "$sg" p99_us)" -v t="$total" -v w="$warn_bytes" -v e="$(( $(field "$sg" non2xx) + $(field "$sg" sockerr) ))" \
      'BEGIN { printf "CF list page (results-per-page=1, total_results %s), c=1: sgbridge %.0f r/s p50 %d µs p99 %d µs; stub %.0f r/s p50 %d µs; ratio %.3f; errors %d; p50 < 20 ms: %s\nX-Cf-Warnings: %d bytes (≤ 8 KB: %s)\n",
               t, a, pa, p99, b, pb, a / b, e, (pa < 20000) ? "ok" : "MISSED", w, (w <= 8192) ? "ok" : "MISSED" }' | tee -a "$TABLE"
  fi

  if [ "$PAGES" = 1 ]; then
    echo
    if [ "$LIST" != 1 ]; then
      note "populating $LIST_GROUPS groups × $LIST_RULES rules for the page"
      "$EX/populate" --base "$BASE" --groups "$LIST_GROUPS" --rules "$LIST_RULES" --concurrency 32 >/dev/null
    fi
    note "the page: overview over $LIST_GROUPS groups, a 250-rule group's page (c=1)"
    G250=$(create_group bench-250 "$(rules_json 250)")
    # Signed in as the development user (admin/admin), as a person would be.
    cookie=$(curl -sS -D - -o /dev/null -H "Origin: $BASE" --data 'username=admin&password=admin' "$BASE/ui/login" \
      | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n1)
    [ -n "$cookie" ] || die "signing in to the page (admin/admin) gave no session cookie"
    for spec in "overview|/ui/|50" "group page, 250 rules|/ui/groups/1/1/$G250|20"; do
      IFS='|' read -r name path limit <<<"$spec"
      status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$BASE$path")
      [ "$status" = 200 ] || die "page $path answered HTTP $status"
      r=$(wrk_run "ui-$name" "$BASE$path" 1 "Cookie: $cookie" GET "" "$SG_PID")
      awk -v n="$name" -v a="$(field "$r" rps)" -v p50="$(field "$r" p50_us)" -v p99="$(field "$r" p99_us)" -v l="$limit" \
          -v e="$(( $(field "$r" non2xx) + $(field "$r" sockerr) ))" \
        'BEGIN { printf "page: %s, c=1: %.0f r/s, p50 %.2f ms, p99 %.2f ms, errors %d (p99 < %d ms: %s)\n",
                 n, a, p50 / 1000, p99 / 1000, e, l, (p99 < l * 1000) ? "ok" : "MISSED" }' | tee -a "$TABLE"
    done
  fi

  if [ "$PROXY" = 1 ]; then stop "$PROXY_PID"; fi
  stop "$SG_PID"
  echo
fi

# ------------------------------------------------------------ audit events
# EVENTS_N events written straight into each store's table (one SQL
# statement; the gateway's own writes would take hours), over 1,000
# targets; then `GET /v3/audit_events?target_guids=<one>` at c=1, p99.
events_sql() {
  # $1: the row generator's first line (SQLite's recursive CTE or
  # PostgreSQL's generate_series), producing column i.
  cat <<SQL
INSERT INTO sgbridge_audit_events (guid, type, created_at, updated_at, actor_guid, actor_type, actor_name,
  target_guid, target_type, target_name, space_guid, organization_guid, data, request_id)
$1
SELECT lower(printf_guid), 'audit.security_group.update', 1700000000 + i, 1700000000 + i,
  'a0000000-0000-4000-8000-000000000001', 'user', 'admin',
  target, 'security_group', 'bench-' || (i % 1000), '', '',
  '{"request":{"rules":[{"protocol":"tcp","destination":"10.0.0.0/8","ports":"443"}]},"outcome":"succeeded","tasks":["00000000-0000-4000-8000-000000000000"],"before":{"rules":1},"after":{"rules":1},"note":"$(printf '%0400d' 0)"}',
  'req-' || i
FROM rows;
SQL
}
if [ "$EVENTS" = 1 ]; then
  echo
  note "audit events: $EVENTS_N in SQLite and in PostgreSQL, filtered by target (c=1)"
  target="b0000000-0000-4000-8000-$(printf '%012d' 7)"
  for store in sqlite postgres; do
    port=$((PORT + 10))
    toml=$(printf '[server]\nlisten = "127.0.0.1:%s"\nshutdown_delay_s = 0\n\n[store]\nkind = "%s"\n' "$port" "$store")
    if [ "$store" = sqlite ]; then
      toml+=$(printf '\npath = "%s"\n' "$WORK/events.db")
      gen="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $EVENTS_N),
rows AS (SELECT i, printf('e%07x-0000-4000-8000-%012d', i, i) AS printf_guid,
  printf('b0000000-0000-4000-8000-%012d', i % 1000) AS target FROM n)"
    else
      if [ ! -x "$(pg_bin)/initdb" ]; then
        echo "audit events on postgres: skipped (no PostgreSQL: apt-get install postgresql)" | tee -a "$TABLE"
        continue
      fi
      pg_start "$WORK/pg" || die "PostgreSQL did not start"
      gen="WITH rows AS (SELECT i, format('e%s-0000-4000-8000-%s', lpad(to_hex(i), 7, '0'), lpad(i::text, 12, '0')) AS printf_guid,
  format('b0000000-0000-4000-8000-%s', lpad((i % 1000)::text, 12, '0')) AS target FROM generate_series(1, $EVENTS_N) AS i)"
    fi
    printf '%s\n' "$toml" >"$WORK/events-$store.toml"
    bg "$OUT/sgbridge-events-$store.log" taskset -c "$SERVER_CPU" "$BIN" serve --config "$WORK/events-$store.toml"
    ev_pid=$BG_PID
    wait_http "http://127.0.0.1:$port/healthz" "$ev_pid" || { cat "$OUT/sgbridge-events-$store.log" >&2; die "sgbridge ($store) did not start"; }
    t0=$(date +%s)
    if [ "$store" = sqlite ]; then
      events_sql "$gen" | sqlite3 "$WORK/events.db"
    else
      events_sql "$gen" | pg_psql >/dev/null
      pg_psql -c 'ANALYZE sgbridge_audit_events' >/dev/null
    fi
    path="/v3/audit_events?target_guids=$target"
    total=$(curl -sS -H "Authorization: $CF_AUTH" "http://127.0.0.1:$port$path" | grep -o '"total_results": *[0-9]*' | grep -o '[0-9]*$')
    r=$(wrk_run "events-$store" "http://127.0.0.1:$port$path" 1 "$CF_AUTH" GET "" "$ev_pid")
    awk -v s="$store" -v n="$EVENTS_N" -v t="$total" -v f="$(( $(date +%s) - t0 ))" -v a="$(field "$r" rps)" \
        -v p50="$(field "$r" p50_us)" -v p99="$(field "$r" p99_us)" -v e="$(( $(field "$r" non2xx) + $(field "$r" sockerr) ))" \
      'BEGIN { printf "audit events on %s: %d events (filled in %d s), one target (total_results %s), c=1: %.0f r/s, p50 %.2f ms, p99 %.2f ms, errors %d (p99 < 20 ms: %s)\n",
               s, n, f, t, a, p50 / 1000, p99 / 1000, e, (p99 < 20000) ? "ok" : "MISSED" }' | tee -a "$TABLE"
    stop "$ev_pid"
    [ "$store" = postgres ] && pg_stop "$WORK/pg"
  done
fi

# ----------------------------------------------------------------- stores
if [ "$STORES" = 1 ]; then
  echo
  note "stores: scripts/bench-replicas.sh (STORE_PHASE_S=$STORE_PHASE_S)"
  if [ -x "$(pg_bin)/initdb" ]; then
    quiet_arg=()
    [ "$QUIET" = 1 ] && quiet_arg=(--quiet-logs)
    SECONDS_PER_PHASE=$STORE_PHASE_S OUT=$OUT/replicas "$ROOT/scripts/bench-replicas.sh" --no-build ${quiet_arg[@]+"${quiet_arg[@]}"} \
      | tee -a "$TABLE"
  else
    echo "stores: skipped (no PostgreSQL: apt-get install postgresql)" | tee -a "$TABLE"
  fi
fi

# ---------------------------------------------------------------- criterion
if [ "$CRITERION" = 1 ]; then
  note "cargo bench --bench translate (pinned to CPU $SERVER_CPU)"
  cargo bench --bench translate --no-run
  taskset -c "$SERVER_CPU" cargo bench --bench translate 2>&1 | tee "$OUT/criterion.txt"
  echo
fi

# ------------------------------------------------------------ the examples
if [ "$LATENESS" = 1 ]; then
  note "lateness (N=$LATENESS_N per task length)"
  N=$LATENESS_N "$EX/lateness" | tee "$OUT/lateness.txt"
  echo
fi

if [ "$WAITERS" = 1 ]; then
  note "waiters (N=$WAITERS_N)"
  need=$((WAITERS_N + 1024))
  (
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
      ulimit -n "$need" 2>/dev/null || { ulimit -Hn "$need" 2>/dev/null && ulimit -n "$need"; } 2>/dev/null \
        || echo "bench.sh: cannot raise ulimit -n to $need (now $(ulimit -n)); waiters will say so" >&2
    fi
    N=$WAITERS_N CLIENT_CPU=$CLIENT_CPU exec taskset -c "$SERVER_CPU" "$EX/waiters"
  ) | tee "$OUT/waiters.txt"
  echo
fi

if [ "$STORM" = 1 ]; then
  note "login storm (50 failed logins/s beside a read load; in process, not pinned)"
  DURATION_S=${DURATION%s} "$EX/login_storm" | tee "$OUT/login-storm.txt"
  echo
fi

echo "results: $OUT"
