#!/usr/bin/env bash
# `make run`: the whole system on the embedded default — SQLite files and the embedded bus under
# var/, migrations applied, the four APIs and their workers on 127.0.0.1. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(ingest qualify dispatch crm)
mkdir -p var/log

if [[ -z ${DEV_TOKEN:-} ]]; then
    DEV_TOKEN="vo_dev_$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')"
    generated=1
fi

for service in "${SERVICES[@]}"; do
    prefix=${service^^}
    export "${prefix}_DEV_TOKEN=$DEV_TOKEN"
    export "${prefix}_BUS=${BUS:-embedded}"
    export "${prefix}_EMBEDDED_BUS_PATH=${EMBEDDED_BUS_PATH:-var/bus.db}"
    export "${prefix}_LOG_JSON=${LOG_JSON:-true}"
    .venv/bin/python -m "$service" migrate
done

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo "run: stopping…" >&2
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

for service in "${SERVICES[@]}"; do
    .venv/bin/python -m "$service" api >>"var/log/$service-api.log" 2>&1 &
    pids+=("$!")
    .venv/bin/python -m "$service" worker >>"var/log/$service-worker.log" 2>&1 &
    pids+=("$!")
done

for port in 8001 8002 8003 8004; do
    for _ in $(seq 1 100); do
        if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
done

cat <<TXT
VO leads is running (SQLite + embedded bus under var/, logs in var/log/):
  ingest   http://127.0.0.1:8001/docs
  qualify  http://127.0.0.1:8002/docs
  dispatch http://127.0.0.1:8003/docs
  crm      http://127.0.0.1:8004/docs
TXT
if [[ -n ${generated:-} ]]; then
    echo "Development token (every role; set DEV_TOKEN to choose it): $DEV_TOKEN"
else
    echo "Development token: the DEV_TOKEN you set"
fi
echo "Try: curl -H \"Authorization: Bearer \$DEV_TOKEN\" http://127.0.0.1:8002/v1/queue"
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
echo "run: a process exited; see var/log/" >&2
