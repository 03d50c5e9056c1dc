#!/usr/bin/env bash
# Make the local PostgreSQL server available to the test suite.
#
# Prints one line on stdout, to be eval'd by the caller:
#   export SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test
# or nothing when PostgreSQL is not installed (the PostgreSQL tests then skip
# with a reason). Diagnostics go to stderr. Never fails the caller: exit 0.
#
# Usage in .ci/run:   eval "$(bash .ci/postgres.sh)"
set -u

HOST=127.0.0.1
PORT=5432
DB=test
URL="postgresql://postgres@${HOST}:${PORT}/${DB}"

say() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
  say "PostgreSQL is not installed; PostgreSQL tests will be skipped"
  exit 0
fi

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if ! ready; then
  for version in $(ls /etc/postgresql); do
    for cluster in $(ls "/etc/postgresql/$version"); do
      say "starting cluster $version/$cluster"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 2>&1 || true
    done
  done
fi

for _ in $(seq 1 60); do
  ready && break
  sleep 0.5
done
if ! ready; then
  say "PostgreSQL did not become ready on $HOST:$PORT; PostgreSQL tests will be skipped"
  exit 0
fi

# The 'test' database may be missing on a fresh cluster.
if command -v psql >/dev/null 2>&1; then
  if ! psql -h "$HOST" -p "$PORT" -U postgres -d "$DB" -Atqc "SELECT 1" >/dev/null 2>&1; then
    say "creating database $DB"
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE $DB" >&2 2>&1 || true
  fi
  if ! psql -h "$HOST" -p "$PORT" -U postgres -d "$DB" -Atqc "SELECT 1" >/dev/null 2>&1; then
    say "cannot log in as postgres to $DB (trust auth expected); PostgreSQL tests will be skipped"
    exit 0
  fi
fi

say "PostgreSQL ready at $URL"
echo "export SIYU_TEST_POSTGRES_URL=$URL"
