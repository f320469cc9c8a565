#!/usr/bin/env bash
# Production smoke (`make smoke`, and CI after the tests): installs requirements.txt, and nothing else, into a fresh
# virtualenv, then runs scripts/smoke.py from it against a throwaway PostgreSQL (scripts/with_postgres.sh). The
# driver starts Redis, gunicorn, one Celery worker per queue and beat as docker-compose.yml does, with the production
# settings, and walks the README through HTTP. Exits non-zero on any failure; the temporary directory (virtualenv,
# copy of the code, logs) is removed whatever happened.
#
# A fresh virtualenv is the point: a runtime dependency that only requirements-dev.txt happens to bring (as
# `packaging` once was for Celery's Redis transport) makes a process crash here, not in production.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
WORK_DIR=$(mktemp -d /tmp/neena-smoke.XXXXXX)
trap 'rm -rf "$WORK_DIR"' EXIT
# Turn signals into a normal exit so the EXIT trap always runs.
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
"$PYTHON" -m venv "$WORK_DIR/venv"
# pip's output goes to a file, shown only when it fails: the smoke's own output stays one line per check.
if ! "$WORK_DIR/venv/bin/python" -m pip install --disable-pip-version-check -r requirements.txt \
    >"$WORK_DIR/pip-install.log" 2>&1; then
    tail -n 40 "$WORK_DIR/pip-install.log" >&2
    echo "smoke: pip install -r requirements.txt failed" >&2
    exit 1
fi
"$WORK_DIR/venv/bin/python" -m pip check --disable-pip-version-check >"$WORK_DIR/pip-check.log" 2>&1 \
    || { cat "$WORK_DIR/pip-check.log" >&2; echo "smoke: pip check failed" >&2; exit 1; }
echo "ok    fresh virtualenv: pip install -r requirements.txt, pip check  ($((SECONDS - started)) s)"

bash scripts/with_postgres.sh "$WORK_DIR/venv/bin/python" scripts/smoke.py --work-dir "$WORK_DIR"
