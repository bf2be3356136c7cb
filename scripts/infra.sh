#!/usr/bin/env bash
# Test/CI infrastructure: a real PostgreSQL (Debian package) and a real Apache
# Kafka 4.4.0 broker (KRaft, jars from Maven Central), both on 127.0.0.1.
#
#   scripts/infra.sh start|stop|status [postgres|kafka|all]     (default: all)
#
# Idempotent: start when up is a no-op, stop when down is a success; status
# exits 0 only if everything asked is up and answers a real request.
# State lives under var/infra/ (gitignored). See docs/infrastructure.md.
#
# Environment: PG_PORT (5432), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
#              PYTHON (.venv/bin/python) for scripts/check_kafka.py,
#              INFRA_TIMEOUT (120) seconds to wait for readiness,
#              KAFKA_KEEP_DATA=1 to restart Kafka on its existing data (topics, offsets).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/var/infra"

PG_PORT="${PG_PORT:-5432}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
TIMEOUT="${INFRA_TIMEOUT:-120}"

# --- PostgreSQL settings
PG_CLUSTER_DIR="$INFRA/postgres"    # may fall back to /var/lib/postgresql/volead-infra (pg_paths)
PG_SOCKET_DIR="/var/run/postgresql" # short path: Unix socket paths are limited to ~107 bytes
PG_USER="vo"
PG_PASSWORD="vo"
PG_DATABASES=(vo_ingest vo_qualify vo_dispatch vo_crm)

# --- Kafka settings
K_POM="$ROOT/deploy/kafka/pom.xml"
K_TEMPLATE="$ROOT/deploy/kafka/server.properties.in"
K_LOG4J="$ROOT/deploy/kafka/log4j2.properties"
K_DIR="$INFRA/kafka"
K_LIBS="$K_DIR/libs"
K_DATA="$K_DIR/data"
K_CONF="$K_DIR/server.properties"
K_PID="$K_DIR/kafka.pid"
K_LOG="$K_DIR/server.log"
K_JVM_OPTS=(-Xms256m -Xmx768m -XX:+UseSerialGC -Djava.awt.headless=true)
# the storage formatter is a short-lived tool: small heap, C1 only (faster JVM start)
K_TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
K_STARTED_MESSAGE="Kafka Server started"

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
die() {
    printf 'infra: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    say "usage: scripts/infra.sh start|stop|status [postgres|kafka|all]" >&2
    exit 2
}
now_ms() { date +%s%3N; }
elapsed() { # elapsed START_MS -> "12.3s"
    local ms=$(($(now_ms) - $1))
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}
need_root() { [[ $EUID -eq 0 ]] || die "$1 must run as root"; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
    need_root "apt-get install $*"
    say "infra: apt-get install $* (log: var/infra/apt.log)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >>"$INFRA/apt.log" 2>&1; then
        tail -n 30 "$INFRA/apt.log" >&2
        die "apt-get install $* failed"
    fi
}

take_lock() { # serialise concurrent start/stop runs; fd 9 must not leak into daemons
    exec 9>"$INFRA/infra.lock"
    flock -w 300 9 || die "another scripts/infra.sh is still running (var/infra/infra.lock)"
}

# ---------------------------------------------------------------- PostgreSQL

pg_find() { # sets PG_VER / PG_BIN to the newest installed PostgreSQL server
    local path ver best=""
    for path in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x $path ]] || continue
        ver=${path#/usr/lib/postgresql/}
        ver=${ver%%/*}
        if [[ -z $best ]] || ((ver > best)); then best=$ver; fi
    done
    [[ -n $best ]] || return 1
    PG_VER=$best
    PG_BIN="/usr/lib/postgresql/$best/bin"
}

pg_paths() {
    # The server runs as the postgres user, which must reach the data dir. If the
    # checkout is not traversable by it (e.g. under /root), use a system path.
    if ! as_pg test -x "$ROOT" 2>/dev/null; then
        PG_CLUSTER_DIR="/var/lib/postgresql/volead-infra"
    fi
    PGDATA="$PG_CLUSTER_DIR/data"
    PG_LOG="$PG_CLUSTER_DIR/postgres.log"
}

as_pg() { (cd / && exec runuser -u postgres -- "$@" 9>&-); }

pg_superuser_psql() { # run SQL from stdin as the postgres superuser over the Unix socket
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -d postgres -f -
}

pg_client_query() { # pg_client_query SQL: as the application role, over TCP with a password
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -At \
        -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "${PG_DATABASES[0]}" -c "$1"
}

pg_ready() { pg_client_query 'select 1' >/dev/null 2>&1; }

pg_running() { [[ -f "$PGDATA/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }

pg_ensure_installed() {
    if ! pg_find; then
        say "postgres: not installed, installing the Debian package"
        apt_install postgresql
        pg_find || die "PostgreSQL server binaries not found under /usr/lib/postgresql after install"
    fi
    command -v runuser >/dev/null || die "runuser (util-linux) is required"
}

pg_stop_conflicting_clusters() {
    # A Debian cluster (usually 15/main, started by the package on systemd machines)
    # listening on our port would steal it: stop it. It is not removed or disabled.
    command -v pg_lsclusters >/dev/null || return 0
    local ver name port status _rest
    while read -r ver name port status _rest; do
        if [[ $port == "$PG_PORT" && $status == online* ]]; then
            say "postgres: stopping Debian cluster $ver/$name, it uses port $PG_PORT"
            pg_ctlcluster "$ver" "$name" stop 9>&- || die "could not stop cluster $ver/$name"
        fi
    done < <(pg_lsclusters -h 2>/dev/null)
}

pg_write_config() {
    cat >"$PGDATA/volead.conf" <<EOF
# written by scripts/infra.sh at each start: throwaway test cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 200
password_encryption = 'scram-sha-256'
# speed over durability: the data is disposable
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    cat >"$PGDATA/pg_hba.conf" <<'EOF'
# written by scripts/infra.sh: peer over the Unix socket, password over TCP (loopback only)
local   all   all                    peer
host    all   all   127.0.0.1/32     scram-sha-256
host    all   all   ::1/128          scram-sha-256
EOF
    chown postgres:postgres "$PGDATA/volead.conf" "$PGDATA/pg_hba.conf"
    chmod 600 "$PGDATA/volead.conf" "$PGDATA/pg_hba.conf"
}

pg_init_cluster() {
    if [[ -f "$PGDATA/PG_VERSION" ]]; then
        local have
        have=$(<"$PGDATA/PG_VERSION")
        [[ $have == "$PG_VER" ]] && return 0
        say "postgres: data dir is for PostgreSQL $have, re-creating it for $PG_VER (test data is disposable)"
    fi
    say "postgres: creating cluster (PostgreSQL $PG_VER) in $PGDATA"
    rm -rf "$PGDATA"
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    if ! as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG_CLUSTER_DIR/initdb.log" 2>&1; then
        tail -n 30 "$PG_CLUSTER_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    printf "\ninclude = 'volead.conf'\n" >>"$PGDATA/postgresql.conf"
}

pg_setup_roles() {
    local db
    {
        cat <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER;
  END IF;
END \$\$;
ALTER ROLE $PG_USER WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
EOF
        for db in "${PG_DATABASES[@]}"; do
            cat <<EOF
SELECT 'CREATE DATABASE $db OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db') \gexec
ALTER DATABASE $db OWNER TO $PG_USER;
EOF
        done
    } | pg_superuser_psql >/dev/null || die "could not create role $PG_USER / databases"
}

pg_wait_ready() { # pg_wait_ready SECONDS
    local deadline=$((SECONDS + $1))
    until pg_ready; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

pg_start() {
    need_root "starting PostgreSQL"
    local t0
    t0=$(now_ms)
    pg_ensure_installed
    install -d -m 755 "$INFRA"
    install -d -o postgres -g postgres -m 2775 "$PG_SOCKET_DIR"
    pg_paths
    if pg_running; then
        if pg_wait_ready 30; then
            pg_setup_roles
            say "postgres: already running (127.0.0.1:$PG_PORT)"
            return 0
        fi
        say "postgres: running but not answering on 127.0.0.1:$PG_PORT, restarting it"
        as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 60 -s || true
    fi
    install -d -o postgres -g postgres -m 755 "$PG_CLUSTER_DIR"
    pg_stop_conflicting_clusters
    if port_open "$PG_PORT"; then
        die "port $PG_PORT is used by another program (not a Debian cluster); set PG_PORT"
    fi
    pg_init_cluster
    pg_write_config
    say "postgres: starting PostgreSQL $PG_VER on 127.0.0.1:$PG_PORT (log: ${PG_LOG#"$ROOT"/})"
    if ! as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$PG_LOG" -w -t 60 -s; then
        tail -n 30 "$PG_LOG" >&2
        die "PostgreSQL did not start"
    fi
    pg_setup_roles
    pg_wait_ready 30 || die "PostgreSQL started but 'select 1' as $PG_USER over TCP fails"
    say "postgres: ready in $(elapsed "$t0") (role $PG_USER, databases ${PG_DATABASES[*]})"
}

pg_stop() {
    if ! pg_find; then
        say "postgres: not installed"
        return 0
    fi
    pg_paths
    if ! pg_running; then
        say "postgres: not running"
        return 0
    fi
    need_root "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 60 -s || die "PostgreSQL did not stop"
    say "postgres: stopped"
}

pg_status() {
    if ! pg_find; then
        say "postgres: down (not installed)"
        return 1
    fi
    local version
    if version=$(pg_client_query "select split_part(current_setting('server_version'), ' ', 1)" 2>/dev/null); then
        say "postgres: up (127.0.0.1:$PG_PORT, PostgreSQL $version)"
        return 0
    fi
    say "postgres: down (no answer to 'select 1' as $PG_USER on 127.0.0.1:$PG_PORT)"
    return 1
}

# ---------------------------------------------------------------- Kafka

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$K_POM"; }

kafka_pid() { # prints the pid of our broker if it is alive
    local pid
    [[ -f $K_PID ]] || return 1
    pid=$(<"$K_PID")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kafka_pid_is_broker "$pid" || return 1
    printf '%s\n' "$pid"
}

kafka_pid_is_broker() { # the process exists and runs kafka.Kafka
    local cmdline
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $cmdline == *" kafka.Kafka "* ]]
}

kafka_stale_pids() { # brokers started with our config whose pid file was lost
    local dir cmdline
    for dir in /proc/[0-9]*; do
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
        [[ $cmdline == *" kafka.Kafka $K_CONF "* ]] && printf '%s\n' "${dir#/proc/}"
    done
    return 0
}

kafka_ensure_java() {
    local major
    if command -v java >/dev/null; then
        major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
        ((${major:-0} >= 17)) && return 0
        say "kafka: java ${major:-?} found, Kafka 4.4 needs 17+"
    fi
    apt_install openjdk-17-jre-headless
}

kafka_fetch_libs() {
    local want stamp="$K_LIBS/.pom.sha256" t0
    want=$(sha256sum "$K_POM" | cut -d' ' -f1)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]] && compgen -G "$K_LIBS/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    command -v mvn >/dev/null || apt_install maven
    say "kafka: fetching the broker jars from Maven Central into var/infra/kafka/libs"
    t0=$(now_ms)
    rm -rf "$K_LIBS.tmp"
    if ! mvn -B -q -f "$K_POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$K_LIBS.tmp" >"$K_DIR/mvn.log" 2>&1 </dev/null; then
        tail -n 40 "$K_DIR/mvn.log" >&2
        die "mvn dependency:copy-dependencies failed (log: var/infra/kafka/mvn.log)"
    fi
    rm -rf "$K_LIBS"
    mv "$K_LIBS.tmp" "$K_LIBS"
    printf '%s\n' "$want" >"$stamp"
    say "kafka: $(find "$K_LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$K_LIBS" | cut -f1) in $(elapsed "$t0")"
}

kafka_render_config() {
    local text
    text=$(<"$K_TEMPLATE")
    text=${text//@LOG_DIR@/"$K_DATA"}
    text=${text//@KAFKA_PORT@/"$KAFKA_PORT"}
    text=${text//@KAFKA_CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}
    [[ $text != *@*@* ]] || die "unreplaced @PLACEHOLDER@ in $K_TEMPLATE"
    printf '%s\n' "$text" >"$K_CONF"
}

kafka_cluster_id() { # 16 random bytes, base64url without padding (a Kafka Uuid); no '-' (argparse)
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [[ $id == *-* ]] || break
    done
    printf '%s\n' "$id"
}

kafka_format() {
    local id
    id=$(kafka_cluster_id)
    rm -rf "$K_DATA"
    if ! java "${K_TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$K_LOG4J" -cp "$K_LIBS/*" \
        kafka.tools.StorageTool format -t "$id" -c "$K_CONF" >"$K_DIR/format.log" 2>&1 </dev/null; then
        cat "$K_DIR/format.log" >&2
        die "kafka-storage format failed"
    fi
}

KAFKA_PY=""
kafka_resolve_python() { # sets KAFKA_PY to a python with aiokafka>=0.14, installing it in a venv if needed
    [[ -z $KAFKA_PY ]] || return 0
    local candidate venv="$INFRA/venv"
    local probe='import sys, aiokafka; v = tuple(int(p) for p in aiokafka.__version__.split(".")[:2]); sys.exit(v < (0, 14))'
    for candidate in "${PYTHON:-$ROOT/.venv/bin/python}" python3 "$venv/bin/python"; do
        if command -v "$candidate" >/dev/null && "$candidate" -c "$probe" 2>/dev/null; then
            KAFKA_PY=$candidate
            return 0
        fi
    done
    command -v python3 >/dev/null || apt_install python3 python3-venv
    say "kafka: no python with aiokafka>=0.14 (PYTHON, .venv, python3), installing it into var/infra/venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv" || die "python3 -m venv failed"
    fi
    "$venv/bin/python" -m pip install -q 'aiokafka>=0.14' || die "pip install aiokafka>=0.14 failed"
    KAFKA_PY="$venv/bin/python"
}

kafka_check() { # kafka_check TIMEOUT [--quiet]: real create-topic/produce/consume round trip
    kafka_resolve_python
    "$KAFKA_PY" "$ROOT/scripts/check_kafka.py" --bootstrap "127.0.0.1:$KAFKA_PORT" --timeout "$1" "${@:2}"
}

kafka_kill() { # kafka_kill PID: SIGTERM (controlled shutdown), SIGKILL after 60 s
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "kafka: pid $pid ignored SIGTERM for 60 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

kafka_fail() { # kafka_fail MESSAGE: print the log tail, stop the broker, exit 1
    say "---- last lines of var/infra/kafka/server.log ----" >&2
    tail -n 40 "$K_LOG" >&2 || true
    say "----" >&2
    local pid
    if pid=$(kafka_pid); then kafka_kill "$pid"; fi
    rm -f "$K_PID"
    die "$1"
}

kafka_wait_ready() { # kafka_wait_ready DEADLINE_SECONDS(absolute $SECONDS value)
    local deadline=$1 pid
    until grep -q "$K_STARTED_MESSAGE" "$K_LOG" 2>/dev/null; do
        pid=$(kafka_pid) || kafka_fail "the broker exited during startup"
        ((SECONDS < deadline)) || kafka_fail "no '$K_STARTED_MESSAGE' in the log after ${TIMEOUT}s"
        sleep 0.2
    done
    local left=$((deadline - SECONDS))
    ((left > 5)) || left=5
    kafka_check "$left" --quiet || kafka_fail "the broker started but the produce/consume round trip failed"
}

kafka_start() {
    local t0 pid deadline version
    t0=$(now_ms)
    deadline=$((SECONDS + TIMEOUT))
    install -d -m 755 "$K_DIR"
    if pid=$(kafka_pid); then
        kafka_resolve_python
        if kafka_check 30 --quiet >/dev/null 2>&1; then
            say "kafka: already running (127.0.0.1:$KAFKA_PORT, pid $pid)"
            return 0
        fi
        say "kafka: running but not answering, restarting it"
        kafka_kill "$pid"
    fi
    # a stale pid file: the process is gone or is not a broker (pid reused)
    rm -f "$K_PID"
    for pid in $(kafka_stale_pids); do
        say "kafka: killing stale broker pid $pid (started with var/infra/kafka/server.properties)"
        kafka_kill "$pid"
    done
    kafka_ensure_java
    kafka_fetch_libs
    kafka_resolve_python # before the broker starts: a venv install must not eat the readiness time
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$port"; then
            die "port $port is already in use (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
        fi
    done
    version=$(kafka_version)
    kafka_render_config
    if [[ ${KAFKA_KEEP_DATA:-0} == 1 && -f $K_DATA/meta.properties && $(cat "$K_DIR/version" 2>/dev/null) == "$version" ]]; then
        # a restart that keeps topics and offsets (the outbox outage test stops and restarts)
        say "kafka: keeping the existing data dir (KAFKA_KEEP_DATA=1)"
    else
        say "kafka: formatting a fresh data dir (var/infra/kafka/data)"
        kafka_format
    fi
    say "kafka: starting Kafka $version on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, log: var/infra/kafka/server.log)"
    : >"$K_LOG"
    rm -f "$K_PID"
    # setsid: own session, immune to the caller's Ctrl-C / terminal; the inner bash
    # writes its own pid and execs java, so the pid file is the JVM's pid.
    (
        cd "$K_DIR"
        # shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner bash
        exec setsid nohup bash -c 'printf "%s\n" "$$" >"$1"; shift; exec "$@"' _ "$K_PID" \
            java "${K_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$K_LOG4J" -cp "$K_LIBS/*" \
            kafka.Kafka "$K_CONF" >>"$K_LOG" 2>&1 </dev/null 9>&-
    ) &
    disown "$!" # no "Killed" job report from this shell if the broker dies
    printf '%s\n' "$version" >"$K_DIR/version"
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $K_PID ]] && break
        sleep 0.1
    done
    kafka_wait_ready "$deadline"
    say "kafka: ready in $(elapsed "$t0") (pid $(<"$K_PID"))"
}

kafka_stop() {
    local pid
    if ! pid=$(kafka_pid); then
        rm -f "$K_PID"
        for pid in $(kafka_stale_pids); do
            say "kafka: killing stale broker pid $pid (no pid file)"
            kafka_kill "$pid"
        done
        say "kafka: not running"
        return 0
    fi
    local t0
    t0=$(now_ms)
    kafka_kill "$pid"
    rm -f "$K_PID"
    say "kafka: stopped in $(elapsed "$t0")"
}

kafka_status() {
    local pid version
    if ! pid=$(kafka_pid); then
        say "kafka: down (not running)"
        return 1
    fi
    version=$(cat "$K_DIR/version" 2>/dev/null || kafka_version)
    kafka_resolve_python >&2
    if kafka_check 15 --quiet >/dev/null 2>&1; then
        say "kafka: up (127.0.0.1:$KAFKA_PORT, $version)"
        return 0
    fi
    say "kafka: down (pid $pid is running but the produce/consume round trip fails)"
    return 1
}

# ---------------------------------------------------------------- main

main() {
    umask 022
    local cmd=${1:-} target=${2:-all}
    [[ $# -le 2 ]] || usage
    case $target in postgres | kafka | all) ;; *) usage ;; esac
    case $cmd in
    start)
        mkdir -p "$INFRA"
        take_lock
        if [[ $target != kafka ]]; then pg_start; fi
        if [[ $target != postgres ]]; then kafka_start; fi
        ;;
    stop)
        mkdir -p "$INFRA"
        take_lock
        if [[ $target != postgres ]]; then kafka_stop; fi
        if [[ $target != kafka ]]; then pg_stop; fi
        ;;
    status)
        local rc=0
        if [[ $target != kafka ]]; then pg_status || rc=1; fi
        if [[ $target != postgres ]]; then kafka_status || rc=1; fi
        return "$rc"
        ;;
    *) usage ;;
    esac
}

main "$@"
