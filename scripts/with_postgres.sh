#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server:
#
#     bash scripts/with_postgres.sh COMMAND [ARG...]
#
# Starts a fresh server on a free 127.0.0.1 port, creates the database `neena`, exports
# DATABASE_URL=postgres://postgres@127.0.0.1:PORT/neena, runs COMMAND, then stops the server and deletes its files
# whatever happened, and exits with COMMAND's status. Installs PostgreSQL with apt-get when it is missing (Debian 12,
# as root). The server is tuned for tests, not durability: fsync and friends are off.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

log() { echo "with_postgres: $*" >&2; }

# Directory holding initdb and pg_ctl: PATH first, else the newest Debian install under /usr/lib/postgresql.
find_pg_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        # Resolve symlinks so createdb is found beside initdb in the real bin directory.
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    fi
    return 0
}

install_postgres() {
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL (initdb, pg_ctl) is not installed and installing it needs root."
        exit 1
    fi
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # As the official postgres Docker image does: install postgresql-common first and switch off the package's own
    # "main" cluster, so installing the server neither creates nor starts a cluster we would never use.
    apt-get install -y -q --no-install-recommends postgresql-common
    sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
    apt-get install -y -q --no-install-recommends postgresql
}

PG_BIN=$(find_pg_bin)
if [ -z "$PG_BIN" ]; then
    install_postgres
    PG_BIN=$(find_pg_bin)
    [ -n "$PG_BIN" ] || { log "initdb/pg_ctl still not found after installing PostgreSQL"; exit 1; }
fi

# PostgreSQL refuses to run as root: as root, the server's files belong to the `postgres` system user and the server
# commands run as that user. Otherwise they run as the caller.
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    as_server_user() {
        # cd / so the server commands don't warn about an unreadable working directory such as /root.
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u postgres -- "$@")
        else
            (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
        fi
    }
else
    as_server_user() { "$@"; }
fi

PYTHON=$(command -v python3 || command -v python3.11 || command -v python)
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# /tmp, not $TMPDIR: the postgres user must be able to reach the directory.
WORK_DIR=$(mktemp -d /tmp/neena-postgres.XXXXXX)
DATA_DIR="$WORK_DIR/data"
LOG_FILE="$WORK_DIR/server.log"

cleanup() {
    if [ -f "$DATA_DIR/postmaster.pid" ]; then
        as_server_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap always runs.
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$WORK_DIR"
fi

as_server_user "$PG_BIN/initdb" --pgdata="$DATA_DIR" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$WORK_DIR/initdb.log" 2>&1 \
    || { cat "$WORK_DIR/initdb.log" >&2; log "initdb failed"; exit 1; }

# initdb's pg_hba.conf with --auth=trust trusts local sockets and loopback connections only.
cat >>"$DATA_DIR/postgresql.conf" <<EOF

# --- with_postgres.sh: a throwaway server for tests ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

if ! as_server_user "$PG_BIN/pg_ctl" --pgdata="$DATA_DIR" --log="$LOG_FILE" --wait --timeout=60 start >/dev/null; then
    cat "$LOG_FILE" >&2 || true
    log "the server did not start"
    exit 1
fi

"$PG_BIN/createdb" --host=127.0.0.1 --port="$PORT" --username=postgres neena

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/neena"
log "PostgreSQL $("$PG_BIN/pg_ctl" --version | sed "s/^.*(PostgreSQL) //") on 127.0.0.1:$PORT, DATABASE_URL=$DATABASE_URL"

# Run the command without letting `set -e` end the script first, and hand back its status.
status=0
"$@" || status=$?
exit "$status"
