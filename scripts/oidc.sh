#!/usr/bin/env bash
# A real OIDC provider for the single-sign-on tests: Keycloak's server distribution
# (org.keycloak:keycloak-quarkus-dist, zip from Maven Central) on 127.0.0.1, with the realm
# of deploy/keycloak/realm.json imported at start. Never a production identity provider.
#
#   scripts/oidc.sh start|stop|status
#
# Idempotent: start when up is a no-op, stop when down is a success; status exits 0 only if
# the realm answers its discovery document and grants a real token. State lives under
# var/infra/keycloak/ (gitignored). See docs/infrastructure.md.
#
# Environment: OIDC_PORT (18080), KEYCLOAK_VERSION (26.7.3),
#              KEYCLOAK_JAVA_HOME (the JDK to run it with; default: `java` on PATH, 17+),
#              KEYCLOAK_JVM_APPEND (-XX:TieredStopAtLevel=1) extra JVM flags,
#              OIDC_TIMEOUT (300) seconds to wait for readiness.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/var/infra"
KC_DIR="$INFRA/keycloak"

PORT="${OIDC_PORT:-18080}"
VERSION="${KEYCLOAK_VERSION:-26.7.3}"
TIMEOUT="${OIDC_TIMEOUT:-300}"
REALM_FILE="$ROOT/deploy/keycloak/realm.json"
REALM="vo-leads"
# The readiness probe asks a real token of this client (deploy/keycloak/realm.json).
PROBE_CLIENT="vo-leads-tests"
PROBE_SECRET="vo-leads-tests-secret"

DIST="$KC_DIR/keycloak-$VERSION"
PID_FILE="$KC_DIR/keycloak.pid"
LOG="$KC_DIR/server.log"
# Build-time options, baked into the distribution once by `kc.sh build` (then `start --optimized`
# skips the minute-long Quarkus re-augmentation that `start-dev` does at every start).
BUILD_OPTIONS=(--db=dev-file)
# Small heap; C1 only: a test server on two shared cores starts sooner without the C2 compiler.
HEAP_OPTS="-Xms64m -Xmx512m"
JVM_APPEND="${KEYCLOAK_JVM_APPEND--XX:TieredStopAtLevel=1}"

say() { printf '%s\n' "$*"; }
die() {
    printf 'oidc: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    say "usage: scripts/oidc.sh start|stop|status" >&2
    exit 2
}
now_ms() { date +%s%3N; }
elapsed() { # elapsed START_MS -> "12.3s"
    local ms=$(($(now_ms) - $1))
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
    [[ $EUID -eq 0 ]] || die "apt-get install $* must run as root"
    say "oidc: apt-get install $* (log: var/infra/keycloak/apt.log)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >>"$KC_DIR/apt.log" 2>&1; then
        tail -n 30 "$KC_DIR/apt.log" >&2
        die "apt-get install $* failed"
    fi
}

take_lock() { # serialise concurrent start/stop runs; fd 9 must not leak into the server
    exec 9>"$KC_DIR/oidc.lock"
    flock -w 600 9 || die "another scripts/oidc.sh is still running (var/infra/keycloak/oidc.lock)"
}

# ---------------------------------------------------------------- Java and the distribution

JAVA_BIN=""
resolve_java() { # sets JAVA_BIN to a java 17+ (Keycloak 26.x runs on 17, 21 and 25)
    local candidate major
    if [[ -n ${KEYCLOAK_JAVA_HOME:-} ]]; then
        candidate="$KEYCLOAK_JAVA_HOME/bin/java"
        [[ -x $candidate ]] || die "KEYCLOAK_JAVA_HOME=$KEYCLOAK_JAVA_HOME has no bin/java"
    else
        command -v java >/dev/null || apt_install openjdk-17-jre-headless
        candidate=$(command -v java)
    fi
    major=$("$candidate" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
    if ((${major:-0} < 17)); then
        [[ -z ${KEYCLOAK_JAVA_HOME:-} ]] || die "$candidate is Java ${major:-?}; Keycloak needs 17+"
        apt_install openjdk-17-jre-headless
        candidate=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
    fi
    JAVA_BIN=$candidate
}

fetch_dist() { # the distribution under var/infra/keycloak/keycloak-VERSION, from Maven Central
    [[ -f $DIST/lib/quarkus-run.jar ]] && return 0
    command -v mvn >/dev/null || apt_install maven
    local t0 download="$KC_DIR/download"
    t0=$(now_ms)
    say "oidc: fetching org.keycloak:keycloak-quarkus-dist:$VERSION (zip) from Maven Central"
    rm -rf "$download" "$DIST"
    # -C: fail on a checksum mismatch instead of warning
    if ! mvn -B -q -C org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
        -DoutputDirectory="$download" >"$KC_DIR/mvn.log" 2>&1 </dev/null; then
        tail -n 40 "$KC_DIR/mvn.log" >&2
        die "mvn dependency:copy failed (log: var/infra/keycloak/mvn.log)"
    fi
    python3 -m zipfile -e "$download/keycloak-quarkus-dist-$VERSION.zip" "$KC_DIR" ||
        die "could not unzip the Keycloak distribution"
    rm -rf "$download"
    [[ -f $DIST/lib/quarkus-run.jar ]] || die "no lib/quarkus-run.jar in the unpacked distribution"
    say "oidc: Keycloak $VERSION unpacked in $(elapsed "$t0") ($(du -sh "$DIST" | cut -f1))"
}

kc() { # kc ARGS...: bin/kc.sh with our Java (zipfile drops the executable bits: run it with sh)
    JAVA="$JAVA_BIN" JAVA_OPTS_KC_HEAP="$HEAP_OPTS" JAVA_OPTS_APPEND="$JVM_APPEND" \
        sh "$DIST/bin/kc.sh" "$@"
}

build_dist() { # `kc.sh build` once per distribution and build options
    local stamp="$DIST/.volead-build" want
    want="$VERSION ${BUILD_OPTIONS[*]}"
    [[ -f $stamp && $(<"$stamp") == "$want" ]] && return 0
    local t0
    t0=$(now_ms)
    say "oidc: kc.sh build ${BUILD_OPTIONS[*]} (once per distribution; log: var/infra/keycloak/build.log)"
    if ! kc build "${BUILD_OPTIONS[@]}" >"$KC_DIR/build.log" 2>&1 </dev/null; then
        tail -n 40 "$KC_DIR/build.log" >&2
        die "kc.sh build failed"
    fi
    printf '%s\n' "$want" >"$stamp"
    say "oidc: built in $(elapsed "$t0")"
}

prepare_realm() { # a changed realm.json wipes the server's data, so that it is imported afresh
    local want stamp="$KC_DIR/realm.sha256"
    want=$(sha256sum "$REALM_FILE" | cut -d' ' -f1)
    if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
        [[ ! -d $DIST/data/h2 ]] || say "oidc: deploy/keycloak/realm.json changed: fresh server data"
        rm -rf "$DIST/data/h2"
    fi
    install -d "$DIST/data/import"
    cp "$REALM_FILE" "$DIST/data/import/$REALM-realm.json"
    printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------- the process

server_pid() { # prints the pid of our kc.sh if it is alive
    local pid cmdline
    [[ -f $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$KC_DIR/"*"/bin/kc.sh "* ]] || return 1
    printf '%s\n' "$pid"
}

stale_pids() { # JVMs of our distribution whose kc.sh is gone (pid file lost, kc.sh killed)
    local dir cmdline
    for dir in /proc/[0-9]*; do
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
        [[ $cmdline == *"-Dkc.home.dir=$KC_DIR/"*"QuarkusEntryPoint"* ]] && printf '%s\n' "${dir#/proc/}"
    done
    return 0
}

kill_server() { # kill_server PID: SIGTERM (kc.sh forwards it to the JVM), SIGKILL of the group after 60 s
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "oidc: pid $pid ignored SIGTERM for 60 s, killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

issuer() { printf 'http://127.0.0.1:%s/realms/%s' "$PORT" "$REALM"; }

answers() { # the discovery document names our issuer, and the realm grants a real token
    local discovery token
    discovery=$(curl -fsS --max-time 5 "$(issuer)/.well-known/openid-configuration" 2>/dev/null) || return 1
    [[ $discovery == *"\"issuer\":\"$(issuer)\""* ]] || return 1
    token=$(curl -fsS --max-time 10 -d grant_type=client_credentials \
        -d client_id="$PROBE_CLIENT" -d client_secret="$PROBE_SECRET" \
        "$(issuer)/protocol/openid-connect/token" 2>/dev/null) || return 1
    [[ $token == *'"access_token":"'* ]]
}

fail_start() { # fail_start MESSAGE: print the log tail, stop the server, exit 1
    say "---- last lines of var/infra/keycloak/server.log ----" >&2
    tail -n 40 "$LOG" >&2 || true
    say "----" >&2
    local pid
    if pid=$(server_pid); then kill_server "$pid"; fi
    rm -f "$PID_FILE"
    die "$1"
}

start() {
    local t0 pid deadline
    t0=$(now_ms)
    deadline=$((SECONDS + TIMEOUT))
    if pid=$(server_pid); then
        if answers; then
            say "oidc: already running ($(issuer), pid $pid)"
            return 0
        fi
        say "oidc: running but not answering, restarting it"
        kill_server "$pid"
    fi
    rm -f "$PID_FILE"
    for pid in $(stale_pids); do
        say "oidc: killing stale Keycloak pid $pid"
        kill_server "$pid"
    done
    command -v curl >/dev/null || apt_install curl
    resolve_java
    fetch_dist
    build_dist
    prepare_realm
    port_open "$PORT" && die "port $PORT is already in use (set OIDC_PORT)"
    say "oidc: starting Keycloak $VERSION on 127.0.0.1:$PORT with $("$JAVA_BIN" -version 2>&1 | head -n 1) (log: var/infra/keycloak/server.log)"
    : >"$LOG"
    # setsid: own session and process group; the inner bash writes its pid then execs kc.sh,
    # which runs the JVM as its child and forwards SIGTERM to it.
    (
        cd "$KC_DIR"
        # shellcheck disable=SC2016 # $$, $1 and $@ belong to the inner bash
        exec setsid nohup bash -c 'printf "%s\n" "$$" >"$1"; shift; exec "$@"' _ "$PID_FILE" \
            env JAVA="$JAVA_BIN" JAVA_OPTS_KC_HEAP="$HEAP_OPTS" JAVA_OPTS_APPEND="$JVM_APPEND" \
            sh "$DIST/bin/kc.sh" start --optimized --import-realm \
            --http-enabled=true --http-host=127.0.0.1 --http-port="$PORT" \
            --hostname="http://127.0.0.1:$PORT" --hostname-strict=false \
            --cache=local --log=console --log-level=WARN,org.keycloak.services:INFO,io.quarkus:INFO \
            >>"$LOG" 2>&1 </dev/null 9>&-
    ) &
    disown "$!"
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $PID_FILE ]] && break
        sleep 0.1
    done
    until answers; do
        server_pid >/dev/null || fail_start "Keycloak exited during startup"
        ((SECONDS < deadline)) || fail_start "Keycloak did not answer within ${TIMEOUT}s (OIDC_TIMEOUT)"
        sleep 0.5
    done
    printf '%s\n' "$VERSION" >"$KC_DIR/version"
    say "oidc: ready in $(elapsed "$t0") (issuer $(issuer), pid $(<"$PID_FILE"))"
}

stop() {
    local pid t0
    if ! pid=$(server_pid); then
        rm -f "$PID_FILE"
        for pid in $(stale_pids); do
            say "oidc: killing stale Keycloak pid $pid (no pid file)"
            kill_server "$pid"
        done
        say "oidc: not running"
        return 0
    fi
    t0=$(now_ms)
    kill_server "$pid"
    rm -f "$PID_FILE"
    say "oidc: stopped in $(elapsed "$t0")"
}

status() {
    local pid
    if ! pid=$(server_pid); then
        say "oidc: down (not running)"
        return 1
    fi
    if answers; then
        say "oidc: up ($(issuer), Keycloak $(cat "$KC_DIR/version" 2>/dev/null || echo "$VERSION"), pid $pid)"
        return 0
    fi
    say "oidc: down (pid $pid is running but the realm does not grant a token)"
    return 1
}

main() {
    umask 022
    [[ $# -eq 1 ]] || usage
    case $1 in
    start)
        install -d "$KC_DIR"
        take_lock
        start
        ;;
    stop)
        install -d "$KC_DIR"
        take_lock
        stop
        ;;
    status) status ;;
    *) usage ;;
    esac
}

main "$@"
