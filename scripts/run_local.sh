#!/usr/bin/env bash
# `make run`: the whole system on the embedded default — SQLite files and the embedded bus under
# $VAR_DIR (default var/), migrations applied, the four APIs and their workers, a demo directory
# in dispatch (DEMO_SEED=0 skips it). Each API listens where its settings say
# (<SVC>_HTTP_HOST / <SVC>_HTTP_PORT, default 127.0.0.1:8001-8004); a port already taken is an
# error before anything starts. "ready" is printed once the processes started here answer.
# Ctrl-C (SIGINT) or SIGTERM stops every process started here.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

SERVICES=(ingest qualify dispatch crm)
PY=.venv/bin/python
say() { printf 'run: %s\n' "$*"; }

if [[ -z ${VAR_DIR:-} ]]; then
    VAR_DIR=var
elif [[ $VAR_DIR != /* && $caller_dir != "$PWD" ]]; then
    VAR_DIR=$caller_dir/$VAR_DIR # relative to where it was given, not to the checkout
fi
mkdir -p "$VAR_DIR/log"
# One stack per data folder: two would share the SQLite files and the bus. The lock is held by
# this script and every process it starts (they inherit the descriptor), released when all exit.
if command -v flock >/dev/null; then
    exec 9>"$VAR_DIR/run.lock"
    if ! flock -n 9; then
        say "another make run already uses $VAR_DIR/ — stop it, or set VAR_DIR (and other ports)" >&2
        exit 1
    fi
fi
say "data in $VAR_DIR/ (SQLite files, embedded bus), logs in $VAR_DIR/log/"

if [[ -z ${DEV_TOKEN:-} ]]; then
    DEV_TOKEN="vo_dev_$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')"
    generated=1
fi
export DEV_TOKEN

for service in "${SERVICES[@]}"; do
    prefix=${service^^}
    export "${prefix}_DEV_TOKEN=$DEV_TOKEN"
    export "${prefix}_BUS=${BUS:-embedded}"
    export "${prefix}_EMBEDDED_BUS_PATH=${EMBEDDED_BUS_PATH:-$VAR_DIR/bus.db}"
    export "${prefix}_LOG_JSON=${LOG_JSON:-true}"
    url_var=${prefix}_DATABASE_URL
    export "$url_var=${!url_var:-sqlite+aiosqlite:///$VAR_DIR/$service.db}"
done

# Where each API listens, from its own settings; fails here when a port is taken.
declare -A URL
endpoints=$($PY scripts/local_stack.py endpoints "${SERVICES[@]}") || exit 1
while read -r service url; do URL[$service]=$url; done <<<"$endpoints"
# Call-back URLs sent to sellers' tools must point at this dispatch, not at the default port.
export DISPATCH_PUBLIC_BASE_URL=${DISPATCH_PUBLIC_BASE_URL:-${URL[dispatch]}}
# A local stack's sellers' tools listen on this machine: webhooks may reach loopback here (never
# by default: docs/dispatch.md, "Where webhooks may go").
export DISPATCH_WEBHOOK_ALLOWED_NETWORKS=${DISPATCH_WEBHOOK_ALLOWED_NETWORKS:-'["127.0.0.0/8","::1/128"]'}

pids=()
# Stops every process started here; then exits with `status`, or dies of `signal` (so that make
# or a calling shell sees an interrupt, not an error).
stop_all() {
    local status=${1:-0} signal=${2:-}
    trap - INT TERM EXIT
    # A signal may run this trap after a step's fork but before its pid is recorded: the job
    # table has it already.
    local job
    for job in $(jobs -p); do
        [[ " ${pids[*]} " == *" $job "* ]] || pids+=("$job")
    done
    if ((${#pids[@]})); then
        say "stopping…"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 1 50); do # 10 s to stop cleanly, then SIGKILL
            local running=()
            for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running+=("$pid"); done
            ((${#running[@]})) || break
            sleep 0.2
        done
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
        say "stopped"
    fi
    if [[ -n $signal ]]; then
        kill "-$signal" $$
    fi
    exit "$status"
}
trap 'stop_all 130 INT' INT
trap 'stop_all 143 TERM' TERM
trap 'stop_all $?' EXIT

# Long steps run in the background and are `wait`ed for, so a signal stops them at once.
run_step() {
    "$@" &
    local pid=$!
    pids+=("$pid")
    wait "$pid"
}

say "migrating ${SERVICES[*]}…"
run_step $PY scripts/local_stack.py migrate "${SERVICES[@]}" || exit 1
pids=()

say "starting the APIs and workers (eight Python processes: a minute or more on a busy machine)…"
started=()
declare -A ROLE # pid → "<service>-api" / "<service>-worker", the name of its log
for service in "${SERVICES[@]}"; do
    $PY -m "$service" api >>"$VAR_DIR/log/$service-api.log" 2>&1 &
    pids+=("$!")
    ROLE[$!]=$service-api
    started+=(--api "$service=${URL[$service]}@$!")
    $PY -m "$service" worker >>"$VAR_DIR/log/$service-worker.log" 2>&1 &
    pids+=("$!")
    ROLE[$!]=$service-worker
    started+=(--worker "$service=$!")
done
run_step $PY scripts/local_stack.py wait --logs "$VAR_DIR/log" \
    --timeout "${READY_TIMEOUT:-300}" "${started[@]}" || exit 1

if [[ ${DEMO_SEED:-1} != 0 ]]; then
    say "demo directory in dispatch (DEMO_SEED=0 skips it):"
    run_step $PY scripts/demo_seed.py "${URL[dispatch]}" || exit 1
fi

cat <<TXT
VO leads is ready (data in $VAR_DIR/, logs in $VAR_DIR/log/):
  ingest   ${URL[ingest]}/docs
  qualify  ${URL[qualify]}/docs
  dispatch ${URL[dispatch]}/docs   (call-backs sent to sellers: $DISPATCH_PUBLIC_BASE_URL)
  crm      ${URL[crm]}/docs
TXT
if [[ -n ${generated:-} ]]; then
    echo "Development token (every role; set DEV_TOKEN to choose it): $DEV_TOKEN"
else
    echo "Development token: the DEV_TOKEN you set"
fi
shown_token=${generated:+$DEV_TOKEN}
echo "Try: curl -H \"Authorization: Bearer ${shown_token:-\$DEV_TOKEN}\" ${URL[qualify]}/v1/queue"
echo "Ctrl-C stops everything."
status=0
exited=
wait -n -p exited "${!ROLE[@]}" || status=$?
say "${ROLE[$exited]} exited (status $status); last lines of $VAR_DIR/log/${ROLE[$exited]}.log:" >&2
tail -n 15 "$VAR_DIR/log/${ROLE[$exited]}.log" >&2
exit 1
