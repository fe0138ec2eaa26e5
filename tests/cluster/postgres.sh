#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests: `postgres.sh start <dir>` initialises a cluster in
# <dir> (trust auth, fsync off: nothing here is worth keeping), starts it on a free loopback
# port and prints its URL on stdout; `postgres.sh stop <dir>` stops it (the directory stays;
# remove it yourself). Run as root, the server runs as the unprivileged user `postgres`
# (created if missing): PostgreSQL refuses to run as root.
#
#   export SANDBOXD_TEST_POSTGRES_URL=$(tests/cluster/postgres.sh start /tmp/pgtest)
#   cargo test -p sandboxd --lib -- store:: telemetry::
#   tests/cluster/postgres.sh stop /tmp/pgtest
set -euo pipefail

usage() { echo "usage: $0 start|stop <dir>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")

bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[[ -x $bindir/pg_ctl ]] || bindir=$(dirname "$(command -v pg_ctl)")

# Runs a PostgreSQL binary as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        id -u postgres >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port found" >&2
    return 1
}

case $cmd in
start)
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && { id -u postgres >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin postgres; chown postgres: "$dir"; }
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=$(free_port)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=300" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
*)
    usage
    ;;
esac
