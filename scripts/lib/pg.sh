# A throwaway PostgreSQL cluster for the benchmark scripts (sourced):
# initdb + pg_ctl in a directory of the caller's, fsync on as shipped,
# listening on 127.0.0.1 only, trust auth, run as `nobody` when we are root
# (PostgreSQL refuses root). Needs Debian's postgresql package.
#
#   . scripts/lib/pg.sh
#   pg_start "$WORK/pg"     # sets PGBIN, PGPORT; exports SGBRIDGE_STORE_URL
#   pg_psql -c 'SELECT 1'
#   pg_stop "$WORK/pg"      # in the caller's cleanup

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

pg_start() {
  local dir=$1
  PGBIN=$(pg_bin)
  [ -x "$PGBIN/initdb" ] || { echo "PostgreSQL not found (apt-get install postgresql)" >&2; return 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown nobody "$dir"; chmod a+x "$(dirname "$dir")"; fi
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pg_as "$PGBIN/initdb" --auth=trust -U postgres -D "$dir/data" >/dev/null
  pg_as "$PGBIN/pg_ctl" -w -D "$dir/data" -l "$dir/pg.log" \
    -o "-p $PGPORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  export SGBRIDGE_STORE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
}

pg_psql() {
  PGOPTIONS="--client-min-messages=warning" "$PGBIN/psql" -q -X -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"
}

pg_stop() {
  [ -n "${PGBIN:-}" ] && [ -d "$1/data" ] || return 0
  pg_as "$PGBIN/pg_ctl" -m immediate -D "$1/data" stop >/dev/null 2>&1 || true
}
