#!/usr/bin/env bash
# PostgreSQL durability for benchmarks: the test cluster of scripts/infra.sh runs with fsync,
# synchronous_commit and full_page_writes off (speed over durability, disposable data); the
# benchmarks must measure production durability.
#
#   scripts/pg_durability.sh on       ALTER SYSTEM SET the three to on, reload, CHECKPOINT
#   scripts/pg_durability.sh reset    ALTER SYSTEM RESET them, reload (back to the config files)
#   scripts/pg_durability.sh show     print "fsync=… synchronous_commit=… full_page_writes=…"
#
# The three are reloadable (no restart). `on` runs a CHECKPOINT after the reload so pages
# written while fsync was off reach the disk before anything is measured.
# `on`/`reset` need the superuser: run as root (through runuser -u postgres over the Unix
# socket, like scripts/infra.sh) or as postgres. `show` asks as the application role over TCP.
#
# Environment: PG_PORT (5432), PG_SOCKET_DIR (/var/run/postgresql), PGPASSWORD of role vo (vo).
set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
PG_SOCKET_DIR="${PG_SOCKET_DIR:-/var/run/postgresql}"
SETTINGS=(fsync synchronous_commit full_page_writes)

die() {
    printf 'pg_durability: error: %s\n' "$*" >&2
    exit 1
}

psql_bin() {
    local path best=""
    for path in /usr/lib/postgresql/*/bin/psql; do
        [[ -x $path ]] && best=$path
    done
    [[ -n $best ]] || best=$(command -v psql) || die "psql not found"
    printf '%s\n' "$best"
}

superuser_psql() { # SQL on stdin, as the postgres superuser over the Unix socket
    local psql
    psql=$(psql_bin)
    if [[ $(id -un) == postgres ]]; then
        "$psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d postgres -f -
    elif [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" \
            -p "$PG_PORT" -d postgres -f -)
    else
        die "changing durability needs the superuser: run as root or postgres"
    fi
}

show() {
    local psql
    psql=$(psql_bin)
    PGPASSWORD="${PGPASSWORD:-vo}" PGCONNECT_TIMEOUT=5 "$psql" -X -At -h 127.0.0.1 -p "$PG_PORT" \
        -U vo -d postgres -c "select 'fsync=' || current_setting('fsync') || ' synchronous_commit=' \
|| current_setting('synchronous_commit') || ' full_page_writes=' || current_setting('full_page_writes')"
}

case ${1:-} in
on)
    {
        for name in "${SETTINGS[@]}"; do printf 'ALTER SYSTEM SET %s = on;\n' "$name"; done
        printf 'SELECT pg_reload_conf();\n'
    } | superuser_psql >/dev/null
    sleep 0.5 # the postmaster signals the reload to every backend
    printf 'CHECKPOINT;\n' | superuser_psql >/dev/null
    show
    ;;
reset)
    {
        for name in "${SETTINGS[@]}"; do printf 'ALTER SYSTEM RESET %s;\n' "$name"; done
        printf 'SELECT pg_reload_conf();\n'
    } | superuser_psql >/dev/null
    sleep 0.5
    show
    ;;
show) show ;;
*)
    printf 'usage: scripts/pg_durability.sh on|reset|show\n' >&2
    exit 2
    ;;
esac
