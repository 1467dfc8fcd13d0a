#!/usr/bin/env bash
# bench/backends.sh - libnetcore's two event backends beside the
# hand-written epoll floor and the peers: requests per second, the
# server's CPU time per request and its system calls per request, for
# HTTP keep-alive loads and echo round trips.
#
# Usage: [RUNS=5] bash bench/backends.sh [SERVER...]
#   SERVER: libnetcore nc-epoll epoll libev libevent libuv (default all),
#   or nc-base: a saved build (NC_BENCH_BASE, see bench/lib.sh) on io_uring
# Environment: RUNS (5), BACKENDS_JOBS (the jobs, below), BACKENDS_SECS
#   (the measured seconds of a timed run, default 2), BACKENDS_N1 (2000)
#   and BACKENDS_N2 (10000) requests of the two strace runs (times the
#   depth), BACKENDS_STRACE (1; 0 leaves out the strace runs), NC_BUILD
#   (build), NC_BENCH_BIN ($NC_BUILD/bench), NC_BENCH_OUT (where the
#   results and strace's tables are kept, default $NC_BUILD/bench-out).
#
# The rows:
#   libnetcore  examples/http-hello and examples/echo-server with
#               NC_BACKEND=io_uring (the library's default where io_uring
#               works; forced, so that a machine where it cannot run
#               fails here rather than measuring epoll twice)
#   nc-epoll    the same two programs with NC_BACKEND=epoll
#   epoll       the floor: bench/http_epoll.c, bench_echo_epoll --serve
#   libev, libevent, libuv   the peers' minimal servers: bench/http_<lib>.c
#               (mini_server.h), bench_echo_<lib> --serve (echo_load.h)
# Which backend each libnetcore server runs is checked from outside: an
# io_uring instance among its descriptors for libnetcore, none for
# nc-epoll.
#
# The jobs, BACKENDS_JOBS: words NAME:LOAD:CONNS:DEPTH, LOAD being http
# (GET / HTTP/1.1 on keep-alive connections) or a message size in bytes
# (echo). On CONNS connections each sends DEPTH requests back to back and
# reads their DEPTH answers before it sends again (bench/http_pingpong.c,
# which checks every answer and every echoed byte). The default:
#   http_c1      HTTP ping-pong, 1 connection
#   http_c100    100 keep-alive connections, one request in flight each
#   http_c10_d16 16-deep pipelining on 10 connections (160 in flight)
#   echo64_c1    echo ping-pong of 64-byte messages, 1 connection
#   echo4k_c1    echo ping-pong of 4 KiB messages, 1 connection
# LOAD wrk runs wrk instead of http_pingpong (the same GET on CONNS
# keep-alive connections, DEPTH > 1 pipelined; `wrk_run` below): the two
# clients must rank the servers alike. For 1,000 connections from one
# address http-hello needs NC_HELLO_ARGS='--max-per-addr 0'.
#
# Each server runs on core 1 (taskset -c 1), the client on core 0. Every
# run (RUNS of them) goes through the jobs, and for each job through the
# servers in turn (a b c a b c: a slow moment of the machine hits every
# server alike), a fresh server for each, which then serves:
#   1. the timed run: after one untimed round on every connection, the
#      client sends for BACKENDS_SECS seconds (at most 10,000,000
#      requests; the requests in flight then end) and reports
#        rate      answers per second, req/s;
#        cpu       the server's utime + stime from /proc/PID/stat over
#                  the measured part, read by the client at its start and
#                  end, per request, in microseconds (one clock tick is
#                  10 ms: about 200 ticks in a 2 s run);
#   2. syscalls: strace -f -c attached to the server for a run of N1
#      requests, then for another of N2 (new connections each time);
#      (calls2 - calls1) / (N2 - N1) cancels the connections' setup and
#      teardown. The per-call breakdown goes to stderr, strace's tables
#      to NC_BENCH_OUT/backends-strace-JOB-SERVER-N.txt (the last run's).
# Every load is bounded: the timed run by BACKENDS_SECS and 10,000,000
# requests, the strace runs by their counts, and every client by a hard
# limit of 300 s.
# Output: lines in bench/run.sh's format, e.g.
#   http_c1 rate libnetcore 41000.0 req/s
#   http_c1 cpu libnetcore 21.5 us/req
#   http_c1 syscalls libnetcore 1.00 calls/req
# kept in NC_BENCH_OUT/backends-results.txt, then the table of medians
# (bench/table.awk): libnetcore / faster peer, libnetcore / epoll (the
# floor) and libnetcore / nc-epoll (io_uring against the epoll backend).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

runs=${RUNS:-5}
secs=${BACKENDS_SECS:-2}
n1=${BACKENDS_N1:-2000}
n2=${BACKENDS_N2:-10000}
use_strace=${BACKENDS_STRACE:-1}
jobs=${BACKENDS_JOBS:-http_c1:http:1:1 http_c100:http:100:1 http_c10_d16:http:10:16 echo64_c1:64:1:1 echo4k_c1:4096:1:1}
out_dir=${NC_BENCH_OUT:-$bench_build/bench-out}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(libnetcore nc-epoll epoll libev libevent libuv)
client=$bench_bin/http_pingpong
max_requests=10000000
hard_s=300

bench_need backends.sh strace taskset timeout "$client"
if [ "$(nproc)" -lt 2 ]; then
    echo "backends.sh: needs 2 cores (server on core 1, client on core 0)" >&2
    exit 1
fi
if [ "$n2" -le "$n1" ]; then
    echo "backends.sh: BACKENDS_N2 must be larger than BACKENDS_N1" >&2
    exit 1
fi
for job in $jobs; do
    if ! [[ $job =~ ^[A-Za-z0-9_]+:(http|wrk|[0-9]+):[0-9]+:[0-9]+$ ]]; then
        echo "backends.sh: '$job' is not NAME:LOAD:CONNS:DEPTH" >&2
        exit 1
    fi
done
for s in "${servers[@]}"; do
    bench_server_cmd "$s" http > /dev/null && bench_server_cmd "$s" echo > /dev/null
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-backends.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
mkdir -p "$out_dir"
results=$out_dir/backends-results.txt
: > "$results"
ticks_per_s=$(getconf CLK_TCK)

# client ARGS...: the load client on core 0; its report on stdout stays
# in $tmp/client.out, what it says on stderr in $tmp/client.err.
client() {
    taskset -c 0 timeout $((hard_s + 10)) "$client" "$@" \
        > "$tmp/client.out" 2> "$tmp/client.err" || {
        echo "backends.sh: the load failed ($*):" >&2
        sed 's/^/  /' "$tmp/client.err" >&2
        return 1
    }
}

# check_backend SERVER: libnetcore must run on io_uring, nc-epoll not.
check_backend() {
    local rings
    rings=$(find "/proc/$server_pid/fd" -lname 'anon_inode:\[io_uring\]' 2>/dev/null | wc -l)
    case $1 in
    libnetcore) [ "$rings" -gt 0 ] || {
        echo "backends.sh: libnetcore is not on io_uring here (see netcore-doctor backend)" >&2
        return 1; } ;;
    nc-epoll) [ "$rings" -eq 0 ] || {
        echo "backends.sh: nc-epoll has an io_uring instance" >&2
        return 1; } ;;
    esac
}

# calls N TABLE: with strace attached to the server, N requests; sets
# count to the system calls counted and writes "name calls" to TABLE.
calls() {
    local f=$out_dir/backends-strace-$job_name-$s-$1.txt
    bench_strace_attach "$server_pid" "$f" || return 1
    if ! client "${load_args[@]}" "$server_port" "$conns" "$1" "$hard_s"; then
        bench_strace_detach
        return 1
    fi
    bench_strace_detach
    rm -f "$f.log"
    bench_strace_table "$f" > "$2"
    count=$(bench_strace_calls "$f") && [ -n "$count" ]
}

# one SERVER: a fresh server for the current job: the timed run, then
# the two strace runs. Appends its result lines.
one() {
    local s=$1 lib=$1 proto=http requests ticks seconds c1 c2 d
    [ "$load" = http ] || [ "$load" = wrk ] || proto="echo"
    # The libnetcore row is the library on io_uring, said explicitly.
    [ "$s" = libnetcore ] && lib=nc-io_uring
    bench_server_cmd "$lib" "$proto" || return 1
    bench_start "$tmp/server.out" taskset -c 1 -- "${server_cmd[@]}" || return 1
    if [ "$load" = wrk ]; then
        wrk_run "$s"
        return
    fi
    if ! check_backend "$s" ||
        ! client "${load_args[@]}" -m "$secs" -p "$server_pid" \
            "$server_port" "$conns" "$max_requests" "$hard_s"; then
        bench_stop "$server_pid" || true
        return 1
    fi
    read -r _ requests _ seconds _ ticks < "$tmp/client.out"
    if [ "${requests:-0}" -le 0 ] || [ "${ticks:--1}" -lt 0 ]; then
        echo "backends.sh: $s: no result: $(cat "$tmp/client.out")" >&2
        bench_stop "$server_pid" || true
        return 1
    fi
    awk -v j="$job_name" -v s="$s" -v n="$requests" -v t="$seconds" \
        -v k="$ticks" -v hz="$ticks_per_s" 'BEGIN {
            printf "%s rate %s %.1f req/s\n", j, s, n / t
            printf "%s cpu %s %.3f us/req\n", j, s, k * 1e6 / hz / n
        }' >> "$results"

    if [ "$use_strace" != 0 ]; then
        d=$((n2 - n1))
        if calls $((n1 * depth)) "$tmp/calls1" && c1=$count &&
            calls $((n2 * depth)) "$tmp/calls2" && c2=$count; then
            awk -v j="$job_name" -v s="$s" -v a="$c1" -v b="$c2" \
                -v d="$((d * depth))" \
                'BEGIN { printf "%s syscalls %s %.3f calls/req\n", j, s, (b - a) / d }' \
                >> "$results"
            echo "  $job_name syscalls $s, per request:" \
                 "$(bench_breakdown "$tmp/calls1" "$tmp/calls2" "$((d * depth))")" >&2
        else
            echo "backends.sh: $s: no system call count for $job_name" >&2
        fi
    fi
    if ! bench_stop "$server_pid"; then
        echo "backends.sh: $s: the server did not exit cleanly on SIGTERM:" >&2
        sed 's/^/  /' "$tmp/server.out" >&2
        return 1
    fi
}

# wrk_run SERVER: the wrk job on the server just started: wrk -t1 on
# core 0 for BACKENDS_SECS seconds (DEPTH > 1: that many requests sent
# back to back on each connection, bench/wrk-pipeline.lua); rate and CPU
# per request as for the timed run (the server's ticks over wrk's run,
# connection setup included; wrk has no warm-up). No strace run.
wrk_run() {
    local s=$1 t0 t1 w0 w1 n script=() script_args=()
    if [ "$depth" -gt 1 ]; then
        script=(-s "$here/wrk-pipeline.lua")
        script_args=(-- "$depth")
    fi
    if ! check_backend "$s"; then
        bench_stop "$server_pid" || true
        return 1
    fi
    t0=$(bench_cpu_ticks "$server_pid")
    w0=$(date +%s%N)
    taskset -c 0 timeout $((secs + 30)) wrk -t1 -c"$conns" -d"${secs}s" \
        "${script[@]}" "http://127.0.0.1:$server_port/" "${script_args[@]}" \
        > "$tmp/wrk.out" 2>&1
    w1=$(date +%s%N)
    t1=$(bench_cpu_ticks "$server_pid")
    n=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
    if ! bench_stop "$server_pid" || [ -z "$n" ] || [ "$n" -le 0 ] ||
        grep -q 'Non-2xx\|Socket errors' "$tmp/wrk.out"; then
        echo "backends.sh: $s: wrk failed in $job_name:" >&2
        sed 's/^/  /' "$tmp/wrk.out" >&2
        return 1
    fi
    awk -v j="$job_name" -v s="$s" -v n="$n" -v w="$((w1 - w0))" \
        -v k="$((t1 - t0))" -v hz="$ticks_per_s" 'BEGIN {
            printf "%s rate %s %.1f req/s\n", j, s, n / (w / 1e9)
            printf "%s cpu %s %.3f us/req\n", j, s, k * 1e6 / hz / n
        }' >> "$results"
}

status=0
for ((r = 1; r <= runs; r++)); do
    for job in $jobs; do
        IFS=: read -r job_name load conns depth <<< "$job"
        load_args=(-d "$depth")
        [ "$load" = http ] || load_args+=(-e "$load")
        for s in "${servers[@]}"; do
            echo "backends run $r/$runs: $job_name, $s" >&2
            if ! one "$s"; then
                echo "backends.sh: $s failed in $job_name, run $r" >&2
                status=1
            fi
        done
    done
done

echo
echo "libnetcore = http-hello / echo-server on io_uring; nc-epoll = the same on"
echo "epoll; epoll = the hand-written floor; libev, libevent, libuv = the peers."
echo "rate: answers per second; cpu: server utime+stime per request;"
echo "syscalls: server system calls per request (strace -f -c)."
awk -v runs="$runs" -f "$here/table.awk" "$results" || status=1
exit $status
