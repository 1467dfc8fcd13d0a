#!/usr/bin/env bash
# bench/callgrind.sh - user-space instructions and system calls per
# request of an HTTP keep-alive server, for libnetcore and its peers.
#
# Usage: bench/callgrind.sh [SERVER...]
#   SERVER: libnetcore nc-mini epoll libev libevent libuv (default all).
# Environment: CALLGRIND_CONNS (connection counts, default "1 50"),
#   CALLGRIND_N1 (5000) and CALLGRIND_N2 (25000) requests, NC_BUILD
#   (build), NC_BENCH_BIN ($NC_BUILD/bench), NC_BENCH_OUT (where the
#   callgrind and strace files are kept, default $NC_BUILD/bench-out).
#
# The servers: libnetcore is examples/http-hello ($NC_BUILD/bin); nc-mini
# (bench/http_libnetcore.c), epoll, libev, libevent and libuv are the
# minimal http_<lib> servers of bench/ (mini_server.h), which answer the
# same bytes, single-threaded (http-hello runs its loop in a worker
# thread, which costs glibc's cancellation wrappers on every system
# call). http-hello also
# validates each request head (examples/common/http.c), which the
# minimal servers do not: its totals include that parser (see _lib).
# The load is bench/http_pingpong: C connections, each with one
# "GET / HTTP/1.1" request in flight, answered before the next is sent.
#
# For each server and each C in CALLGRIND_CONNS:
#   callgrind  the server runs under valgrind --tool=callgrind, which
#              counts every user-space instruction it executes (Ir),
#              its libraries' included, the kernel's not; deterministic
#              but for how events happen to batch, so one run suffices;
#   callgrind ..._lib  the same, less the server's own request handling:
#              http-hello's on_data without the nc_conn_write it calls,
#              or the minimal servers' mini_http_answer (kept out of line
#              for this); what is left is the loop, the library's
#              connection handling, libc and the system call wrappers;
#   syscalls   the server runs on its own with strace -f -c attached
#              while the load runs, counting its system calls.
# Each is done twice, with N1 and N2 requests; start-up, connection setup
# and shut-down cancel out of (count2 - count1) / (N2 - N1), the cost of
# one request. The per-call breakdown of the system calls goes to stderr.
# Output: lines in bench/run.sh's format, e.g.
#   callgrind http_pingpong_1 libnetcore 800 Ir/req
#   callgrind http_pingpong_1_lib libnetcore 400 Ir/req
#   syscalls http_pingpong_1 libnetcore 3.00 calls/req
# then the table (bench/table.awk).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

# Valgrind cannot follow io_uring: under it http-hello's io_uring loop
# never gets to listen. libnetcore runs on its epoll backend here, in the
# strace runs too, so that both rows describe the same server;
# bench/backends.sh compares the two backends.
export NC_BACKEND=epoll

conns_list=${CALLGRIND_CONNS:-1 50}
n1=${CALLGRIND_N1:-5000}
n2=${CALLGRIND_N2:-25000}
out_dir=${NC_BENCH_OUT:-$bench_build/bench-out}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(libnetcore nc-mini epoll libev libevent libuv)
client=$bench_bin/http_pingpong

bench_need callgrind.sh valgrind strace "$client"
if [ "$n2" -le "$n1" ]; then
    echo "callgrind.sh: CALLGRIND_N2 must be larger than CALLGRIND_N1" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-callgrind.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
mkdir -p "$out_dir"
results=$tmp/results
: > "$results"

# load C N: N ping-pong requests on C connections; valgrind is slow, so
# the time limit is generous (the client stops by itself at it).
load() {
    timeout 1900 "$client" "$server_port" "$1" "$2" 1800 2> "$tmp/client" || {
        echo "callgrind.sh: the load failed:" >&2
        sed 's/^/  /' "$tmp/client" >&2
        return 1
    }
}

# incl ANNOTATION REGEX: the inclusive Ir of the function whose
# "file:function [object]" line of callgrind_annotate matches REGEX, or 0.
incl() {
    awk -v re="$2" '$0 ~ re && / \[/ {
        gsub(",", "", $1); print $1; found = 1; exit
    } END { if (!found) print 0 }' "$1"
}

# own_ir FILE SERVER: the Ir of the server's own request handling in
# callgrind's FILE: http-hello's on_data less the nc_conn_write it calls
# (the library's part); mini_http_answer for the minimal servers.
own_ir() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" \
        > "$tmp/annotate" 2>/dev/null || return 1
    if [ "$2" = libnetcore ]; then
        echo $(($(incl "$tmp/annotate" 'http-hello\.c:on_data ') -
                $(incl "$tmp/annotate" ':nc_conn_write ')))
    else
        incl "$tmp/annotate" ':mini_http_answer[ .]'
    fi
}

# Not in $(...) subshells below: the PIDs the helpers remember must stay
# in this shell for the cleanup on exit. Results are left in $count.

# ir SERVER C N: sets count to the Ir total of the server over a run of N
# requests, own to the part of it in the server's own code (own_ir).
ir() {
    local f=$out_dir/callgrind.out.$1-$2-$3
    # Valgrind starts slowly: give it 60 s to listen.
    bench_start_s=60 bench_start "$tmp/server.out" \
        valgrind --tool=callgrind --callgrind-out-file="$f" -- \
        "${server_cmd[@]}" || return 1
    if ! load "$2" "$3"; then
        bench_stop "$server_pid" 60 || true
        return 1
    fi
    if ! bench_stop "$server_pid" 60; then
        echo "callgrind.sh: $1 did not exit cleanly under valgrind:" >&2
        sed 's/^/  /' "$tmp/server.out" >&2
        return 1
    fi
    count=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    own=$(own_ir "$f" "$1")
    [ -n "$count" ] && [ -n "$own" ]
}

# calls SERVER C N TABLE: sets count to the system calls of the server
# over N requests, and writes the per-call counts into TABLE.
calls() {
    bench_calls "$out_dir/strace.$1-$2-$3.txt" "$4" "$2" "$3"
}

per_request() {
    awk -v a="$1" -v b="$2" -v d="$((n2 - n1))" -v fmt="$3" \
        'BEGIN { printf fmt, (b - a) / d }'
}

status=0
for s in "${servers[@]}"; do
    if ! bench_server_cmd "$s"; then
        status=1
        continue
    fi
    for c in $conns_list; do
        echo "callgrind: $s, $c connection(s): $n1 and $n2 requests" >&2
        if ir "$s" "$c" "$n1" && ir1=$count && own1=$own &&
            ir "$s" "$c" "$n2"; then
            ir2=$count
            own2=$own
            {
                echo "callgrind http_pingpong_$c $s $(per_request "$ir1" "$ir2" %.0f) Ir/req"
                echo "callgrind http_pingpong_${c}_lib $s $(per_request \
                    $((ir1 - own1)) $((ir2 - own2)) %.0f) Ir/req"
            } | tee -a "$results"
        else
            echo "callgrind.sh: $s: no instruction count at $c connection(s)" >&2
            status=1
        fi
        if calls "$s" "$c" "$n1" "$tmp/calls1" && sc1=$count &&
            calls "$s" "$c" "$n2" "$tmp/calls2"; then
            sc2=$count
            echo "syscalls http_pingpong_$c $s $(per_request "$sc1" "$sc2" %.2f) calls/req" |
                tee -a "$results"
            echo "syscalls http_pingpong_$c $s, per request:" \
                 "$(bench_breakdown "$tmp/calls1" "$tmp/calls2" "$((n2 - n1))")" >&2
        else
            echo "callgrind.sh: $s: no system call count at $c connection(s)" >&2
            status=1
        fi
    done
done
echo
awk -v runs=1 -f "$here/table.awk" "$results" || status=1
exit $status
