#!/usr/bin/env bash
# `make run`: migrate the database, make sure a demo API key exists and show it, then run the whole platform
# (embedded Redis unless REDIS_URL is set, web server on 127.0.0.1:8000, Celery worker and beat) in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${VENV:-.venv}/bin/python"
# var/ is git-ignored: the SQLite database and the demo key live there.
KEY_FILE=var/demo_api_key
mkdir -p var

# Applying migrations also syncs the integration catalogue (a post-migrate step of the app).
"$PY" manage.py migrate --noinput

# True when the key saved by an earlier run is still a live token in *this* database; a deleted or replaced
# database (or another DATABASE_URL) gets a fresh key instead of a stale one.
saved_key_is_live() {
    [ -s "$KEY_FILE" ] || return 1
    NEENA_DEMO_KEY="$(cat "$KEY_FILE")" "$PY" manage.py shell --no-imports --verbosity 0 -c '
import hashlib, os, sys
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
# Tokens are stored as their SHA-256 checksum only.
checksum = hashlib.sha256(os.environ["NEENA_DEMO_KEY"].encode()).hexdigest()
live = get_access_token_model().objects.filter(token_checksum=checksum, expires__gt=timezone.now()).exists()
sys.exit(0 if live else 1)
'
}

if saved_key_is_live; then
    KEY=$(cat "$KEY_FILE")
else
    # create_api_key prints only the token; keep the last line in case anything else reaches stdout.
    KEY=$("$PY" manage.py create_api_key --email demo@neena.local --full-name "Demo User" | tail -n 1)
    if [ -z "$KEY" ]; then
        echo "run.sh: create_api_key printed no key" >&2
        exit 1
    fi
    (umask 077 && printf '%s\n' "$KEY" >"$KEY_FILE")
fi

cat <<BANNER

======================================================================================
  Neena is starting on http://${NEENA_HOST:-127.0.0.1}:${NEENA_PORT:-8000}/

  Demo API key (user demo@neena.local, saved in $KEY_FILE):

      $KEY

  Try it:

      curl -H "Authorization: Bearer $KEY" http://${NEENA_HOST:-127.0.0.1}:${NEENA_PORT:-8000}/api/v1/users/

  Stop everything with Ctrl-C.
======================================================================================

BANNER

exec "$PY" scripts/run_platform.py
