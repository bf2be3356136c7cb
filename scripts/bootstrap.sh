#!/usr/bin/env bash
# Creates the project's environment (.venv) from uv.lock. Installs uv itself into .tools/ when it
# is not on PATH. Idempotent: a second run only checks that .venv matches the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
export UV_PYTHON_DOWNLOADS=never # use the machine's Python 3.11+, never download one

uv_bin() {
    if command -v uv >/dev/null 2>&1; then
        command -v uv
        return
    fi
    if [[ ! -x .tools/bin/uv ]]; then
        echo "bootstrap: installing uv $UV_VERSION into .tools/" >&2
        python3 -m venv .tools
        .tools/bin/pip install --quiet "uv==$UV_VERSION"
    fi
    echo .tools/bin/uv
}

uv=$(uv_bin)
if [[ ! -x .venv/bin/python ]]; then
    echo "bootstrap: creating .venv from uv.lock (first time only; downloads the packages)…" >&2
fi
"$uv" sync --frozen --all-packages --quiet
echo "bootstrap: .venv ready ($(.venv/bin/python --version))" >&2
