#!/usr/bin/env bash
# Put PgBouncer (transaction pooling) in front of the local PostgreSQL server for the test suite.
#
# Prints one line on stdout, to be eval'd by the caller after .ci/postgres.sh:
#   export SIYU_TEST_PGBOUNCER_URL=postgresql://postgres@127.0.0.1:6432/test?pgbouncer=1
# or nothing when PostgreSQL is not there (the PgBouncer tests then skip with a reason).
# Installs Debian's pgbouncer with .ci/debian.sh when it is missing (CI runs as root). Its own
# configuration lives in a temporary directory; the system's /etc/pgbouncer is not used.
#
# Usage in .ci/run:   eval "$(bash .ci/pgbouncer.sh)"
set -u

HOST=127.0.0.1
PG_PORT=5432
PORT=6432
DB=test
say() { echo "pgbouncer.sh: $*" >&2; }

if ! pg_isready -q -h "$HOST" -p "$PG_PORT" 2>/dev/null; then
  say "no PostgreSQL on $HOST:$PG_PORT; PgBouncer tests will be skipped"
  exit 0
fi
bash "$(dirname "$0")/debian.sh" pgbouncer >&2 2>&1 || say "could not install pgbouncer with apt-get"
BIN=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ ! -x "$BIN" ]; then
  say "pgbouncer could not be installed; PgBouncer tests will be skipped"
  exit 0
fi

if ! pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then
  DIR=$(mktemp -d /tmp/siyu-pgbouncer.XXXXXX)
  cat > "$DIR/pgbouncer.ini" <<INI
[databases]
* = host=$HOST port=$PG_PORT

[pgbouncer]
listen_addr = $HOST
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
ignore_startup_parameters = extra_float_digits,options
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
  echo '"postgres" ""' > "$DIR/userlist.txt"
  # pgbouncer refuses to run as root; the postgres system user exists wherever the server does.
  chown -R postgres "$DIR" 2>/dev/null || true
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    su postgres -s /bin/sh -c "$BIN -d $DIR/pgbouncer.ini" >&2 2>&1 || true
  else
    "$BIN" -d "$DIR/pgbouncer.ini" >&2 2>&1 || true
  fi
  for _ in $(seq 1 40); do
    pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null && break
    sleep 0.25
  done
fi
if ! pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then
  say "PgBouncer did not start on $HOST:$PORT; PgBouncer tests will be skipped"
  exit 0
fi
say "PgBouncer (transaction pooling) ready at $HOST:$PORT in front of $HOST:$PG_PORT"
echo "export SIYU_TEST_PGBOUNCER_URL=postgresql://postgres@$HOST:$PORT/$DB?pgbouncer=1"
