#!/usr/bin/env bash
# A throw-away PostgreSQL for trying Dockgate's shared store: examples/postgres-dev.sh DIR PORT
#
# Runs in the foreground until Ctrl-C (or SIGTERM), listening on 127.0.0.1:PORT only, trusting
# every connection from there (no password: for a laptop, never for production). A new DIR gets a
# cluster and an empty `dockgate` database; an existing one is started again as it was. The
# server's programs come from `pg_config --bindir` (Debian: the `postgresql` package). PostgreSQL
# refuses to run as root: under root it runs as the `postgres` user, which is given DIR and
# search (x, never read) permission on DIR's parents so that it can reach it.
set -euo pipefail

usage() {
    echo "usage: examples/postgres-dev.sh DIR PORT" >&2
    exit 2
}
fail() {
    echo "postgres-dev: $*" >&2
    exit 1
}

[ $# -eq 2 ] || usage
port=$2
case $port in '' | *[!0-9]*) fail "PORT \`$port\`: expected a port number" ;; esac
command -v pg_config >/dev/null || fail "\`pg_config\` not found: install the \`postgresql\` package"
bin=$(pg_config --bindir)
[ -x "$bin/initdb" ] || fail "no \`initdb\` in \`$bin\`: install the \`postgresql\` package"
mkdir -p "$1"
dir=$(cd "$1" && pwd)

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root needs a \`postgres\` user to run the server as"
    as_owner=(runuser -u postgres --)
    parent=$dir
    while [ "$parent" != / ]; do
        parent=$(dirname "$parent")
        chmod o+x "$parent"
    done
    chown postgres: "$dir"
    chmod 0700 "$dir"
fi
run() { "${as_owner[@]}" "$@"; }

settings=(-c "listen_addresses=127.0.0.1" -c "port=$port" -c "unix_socket_directories=$dir")
if [ ! -f "$dir/PG_VERSION" ]; then
    run "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | run tee "$dir/pg_hba.conf" >/dev/null
    # the database first, on the socket alone: nothing connects over TCP before it exists
    run "$bin/pg_ctl" -D "$dir" -w -l "$dir/first-start.log" \
        -o "-c listen_addresses='' -c port=$port -c unix_socket_directories=$dir" start >/dev/null
    run "$bin/createdb" -h "$dir" -p "$port" -U postgres dockgate
    run "$bin/pg_ctl" -D "$dir" -w -m fast stop >/dev/null
fi
echo "postgres-dev: postgresql://postgres@127.0.0.1:$port/dockgate (Ctrl-C stops it)" >&2
exec "${as_owner[@]}" "$bin/postgres" -D "$dir" "${settings[@]}"
