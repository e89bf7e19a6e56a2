#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for `make test-postgres`; prints its URL on the last line.
#   scripts/start_postgres.sh [DATA_DIR] [PORT]     start (or reuse) a server with its data in DATA_DIR
#   scripts/start_postgres.sh --stop DATA_DIR       stop it
# Installs Debian's postgresql if no initdb is found; runs the server as a non-root user when called as root.
# DATA_DIR's parent must be traversable by that user (mktemp -d makes a 0700 folder: use it as DATA_DIR itself).
set -euo pipefail
PG_USER=v2vpg   # the unprivileged owner of the data folder when called as root
DB=dagster

find_bin() {
  command -v "$1" 2>/dev/null || ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}

# PostgreSQL refuses to run as root: run its programs as an unprivileged user that owns the data folder.
RUN_AS=()
[ "$(id -u)" = 0 ] && RUN_AS=(runuser -u "$PG_USER" --)

if [ "${1:-}" = "--stop" ]; then
  DATA=${2:?usage: $0 --stop DATA_DIR}
  "${RUN_AS[@]}" "$(find_bin pg_ctl)" -D "$DATA" -m fast -w stop >/dev/null
  exit 0
fi

DATA=${1:-${TMPDIR:-/tmp}/v2v-pg}
PORT=${2:-55432}
if [ -z "$(find_bin initdb)" ]; then
  [ "$(id -u)" = 0 ] || { echo "postgresql is not installed; run: sudo apt-get install -y postgresql" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
INITDB=$(find_bin initdb); PG_CTL=$(find_bin pg_ctl); PSQL=$(find_bin psql)

if [ "$(id -u)" = 0 ]; then
  id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  mkdir -p "$DATA"; chown "$PG_USER" "$DATA"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  "${RUN_AS[@]}" "$INITDB" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! "${RUN_AS[@]}" "$PG_CTL" -D "$DATA" status >/dev/null 2>&1; then
  "${RUN_AS[@]}" "$PG_CTL" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c max_connections=200" start >/dev/null
fi
if ! "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "select 1 from pg_database where datname='$DB'" | grep -q 1; then
  "$PSQL" -h 127.0.0.1 -p "$PORT" -U postgres -qc "create database $DB"
fi
echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
