#!/usr/bin/env bash
# Upstream postgres entrypoint, reduced to what docker-compose.yml and the Helm chart use:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required), POSTGRES_DB (default = user), PGDATA,
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz on an empty PGDATA, scram-sha-256 for TCP clients,
#   started as root (drops to uid 999) or directly as uid 999 (the chart: read-only root, emptyDir run/tmp).
set -Eeuo pipefail

if [[ "${1:0:1}" == "-" ]]; then
  set -- postgres "$@"
fi
if [[ "$1" != "postgres" ]]; then
  exec "$@"
fi

if [[ "$(id -u)" == "0" ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream reads it
  initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-} \
    --auth-local=trust --auth-host=scram-sha-256
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  # Temporary server for the init scripts: unix socket only, so TCP clients (and pg_isready -h) wait.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  export PGUSER="$user" PGPASSWORD="$POSTGRES_PASSWORD"
  if [[ "$db" != "postgres" ]]; then
    psql -v ON_ERROR_STOP=1 --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
    *.sh)
      if [[ -x "$f" ]]; then
        echo "running $f"
        "$f"
      else
        echo "sourcing $f"
        # shellcheck disable=SC1090
        . "$f"
      fi
      ;;
    *.sql)
      echo "running $f"
      psql -v ON_ERROR_STOP=1 --dbname "$db" -f "$f"
      ;;
    *.sql.gz)
      echo "running $f"
      gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --dbname "$db"
      ;;
    *)
      if [[ -e "$f" ]]; then echo "ignoring $f"; fi
      ;;
    esac
  done
  unset PGPASSWORD
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
