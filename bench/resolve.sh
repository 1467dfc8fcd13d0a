#!/usr/bin/env bash
# bench/resolve.sh - connects by name: libnetcore (nc_connect to
# "bench.test:PORT": c-ares in the loop, Happy Eyeballs) against libevent
# (bufferevent_socket_connect_hostname with evdns) and libuv
# (uv_getaddrinfo on its thread pool, then uv_tcp_connect), all against
# the same local DNS server: dnsmasq answering bench.test with 127.0.0.1
# (and no IPv6 address: each library asks for both families).
# Interleaved (libevent, libuv, libnetcore, ...) RUNS times (default 5);
# prints the table of medians (bench/table.awk): connects per second, and
# the client process's CPU (every thread) per connect.
#
# Usage: [RUNS=5] bash bench/resolve.sh   (as root: it makes a mount and a
#        network namespace of its own)
# Environment: RUNS, NC_BUILD (build), NC_BENCH_BIN ($NC_BUILD/bench),
#   NC_BENCH_OUT ($NC_BUILD/bench-out), NC_BENCH_RESOLVE_TOTAL (20000
#   connects per run), NC_BENCH_RESOLVE_CONCURRENCY (32 at a time).
#
# Everything runs inside `unshare --mount --net`: /etc/resolv.conf and
# /etc/hosts there are bind mounts of files made here (nameserver
# 127.0.0.1), dnsmasq and the server (echo-server) listen on that
# namespace's own loopback, and the machine's resolver is never asked.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
build=${NC_BUILD:-build}
bin_dir=${NC_BENCH_BIN:-$build/bench}
out_dir=${NC_BENCH_OUT:-$build/bench-out}
runs=${RUNS:-5}
port=7100

if [ "${NC_BENCH_RESOLVE_INSIDE:-}" != 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench/resolve.sh: needs root (mount and network namespaces); skipped" >&2
        exit 0
    fi
    dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
    [ -x "$dnsmasq" ] || { echo "bench/resolve.sh: dnsmasq is missing (apt-get install dnsmasq-base)" >&2; exit 1; }
    "${MAKE:-make}" --no-print-directory BUILD="$build" \
        "$build/bench/bench_resolve_libnetcore" "$build/bench/bench_resolve_libevent" \
        "$build/bench/bench_resolve_libuv" "$build/bin/echo-server" > /dev/null
    NC_BENCH_RESOLVE_INSIDE=1 NC_BENCH_DNSMASQ=$dnsmasq exec unshare --mount --net \
        bash "$here/resolve.sh" "$@"
fi

# ---- inside the namespaces ----------------------------------------------
mount --make-rprivate /
ip link set lo up
world=$(mktemp -d "${TMPDIR:-/tmp}/nc-bench-resolve.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$world"
}
trap cleanup EXIT
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' > "$world/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$world/hosts"
printf 'hosts: files dns\n' > "$world/nsswitch.conf"
mount --bind "$world/resolv.conf" /etc/resolv.conf
mount --bind "$world/hosts" /etc/hosts
mount --bind "$world/nsswitch.conf" /etc/nsswitch.conf

"$NC_BENCH_DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv \
    --no-hosts --bind-interfaces --listen-address=127.0.0.1 --port=53 \
    --pid-file= --user=root --local=/test/ --host-record=bench.test,127.0.0.1 \
    --dns-forward-max=1000 2>/dev/null &
pids+=($!)
"$build/bin/echo-server" --listen "127.0.0.1:$port" > /dev/null 2>&1 &
pids+=($!)
# Both up: a connect by name that works.
for i in $(seq 1 100); do
    if NC_BENCH_RESOLVE_TOTAL=1 NC_BENCH_RESOLVE_CONCURRENCY=1 \
        "$bin_dir/bench_resolve_libnetcore" "$port" > /dev/null 2>&1; then
        break
    fi
    [ "$i" = 100 ] && { echo "bench/resolve.sh: dnsmasq or the server did not come up" >&2; exit 1; }
    sleep 0.05
done

mkdir -p "$out_dir"
results=$out_dir/resolve-results.txt
notes=$out_dir/resolve-notes.txt
: > "$results"
: > "$notes"
for ((r = 1; r <= runs; r++)); do
    for lib in libevent libuv libnetcore; do
        echo "run $r/$runs: bench_resolve_$lib" >&2
        if ! "$bin_dir/bench_resolve_$lib" "$port" >> "$results" 2>> "$notes"; then
            echo "bench/resolve.sh: bench_resolve_$lib failed:" >&2
            sed 's/^/  /' "$notes" >&2
            exit 1
        fi
    done
done
awk -v runs="$runs" -f "$here/table.awk" "$results"
