#!/usr/bin/env bash
# bench/churn.sh - connection churn: one new connection per request, closed
# by the server after its answer, for libnetcore and its peers.
#
# Usage: bench/churn.sh [SERVER...]
#   SERVER: libnetcore epoll libev libevent libuv nginx (default all; nginx
#   is skipped with a message when $NC_NGINX, default /usr/sbin/nginx, is
#   missing).
# Environment: RUNS (default 5), CHURN_REQUESTS (20000), CHURN_CONCURRENCY
#   (50), CHURN_STRACE_REQUESTS (5000), NC_BUILD (build), NC_BENCH_BIN
#   ($NC_BUILD/bench), NC_BENCH_OUT (where the strace tables are kept,
#   default $NC_BUILD/bench-out).
#
# The servers: libnetcore is examples/http-hello ($NC_BUILD/bin); epoll,
# libev, libevent and libuv are the minimal http_<lib> servers of bench/
# (mini_server.h), which answer the same bytes; nginx runs with one
# process (master_process off), access_log off and `return 200 "Hello,
# World!"`, its configuration and logs in a temporary directory. Every one
# listens on 127.0.0.1 only. With NC_HELLO_ARGS=--defer-accept and
# NC_NGINX_DEFERRED=1 both accept a connection only once its request has
# arrived (TCP_DEFER_ACCEPT).
#
# The load is ApacheBench: HTTP/1.0 requests without keep-alive, so every
# request is a connection of its own that the server closes after its
# answer. The server runs on core 1 (taskset -c 1), ab on core 0. For each
# server, in every run (servers interleaved, a fresh server each time):
#   1. warm-up: ab -n 1000 -c 10, not measured;
#   2. ab -n CHURN_REQUESTS -c CHURN_CONCURRENCY (at most 60 s):
#        conn_rate   ab's requests per second, each a connection;
#        server_cpu  the server's utime + stime (/proc/PID/stat) over the
#                    run, divided by the connections, in microseconds;
#   3. strace -f -c attached to the server for ab -n CHURN_STRACE_REQUESTS
#      (slower, so a separate, shorter run):
#        syscalls    system calls counted, divided by the connections;
#      the per-call breakdown goes to stderr, strace's table to
#      NC_BENCH_OUT/churn-strace-SERVER-RUN.txt.
# Output: lines in bench/run.sh's format, e.g.
#   churn conn_rate nginx 9876.5 conn/s
#   churn server_cpu libnetcore 29.5 us/conn
#   churn syscalls libnetcore 9.00 calls/conn
# then the table of medians (bench/table.awk). ab may open up to
# CONCURRENCY connections more than it completes at the end of a run; the
# divisor is the completed requests, so a figure per connection can be
# high by up to CONCURRENCY/REQUESTS (0.25% with the defaults).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

runs=${RUNS:-5}
requests=${CHURN_REQUESTS:-20000}
concurrency=${CHURN_CONCURRENCY:-50}
strace_requests=${CHURN_STRACE_REQUESTS:-5000}
bench_nginx=${NC_NGINX:-/usr/sbin/nginx}
out_dir=${NC_BENCH_OUT:-$bench_build/bench-out}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(libnetcore epoll libev libevent libuv nginx)

bench_need churn.sh ab strace taskset ss
if [ "$(nproc)" -lt 2 ]; then
    echo "churn.sh: needs 2 cores (server on core 1, ab on core 0)" >&2
    exit 1
fi
list=()
for s in "${servers[@]}"; do
    if [ "$s" = nginx ] && [ ! -x "$bench_nginx" ]; then
        echo "churn.sh: $bench_nginx is missing: no nginx rows" \
             "(apt-get install nginx-light)" >&2
        continue
    fi
    list+=("$s")
done
[ ${#list[@]} -gt 0 ] || { echo "churn.sh: no server to run" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-churn.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
mkdir -p "$out_dir"
results=$tmp/results
: > "$results"
ticks_per_s=$(getconf CLK_TCK)

# nginx_start: start nginx (one process, pinned to core 1) on a free port
# of 127.0.0.1; sets server_pid and server_port like bench_start.
nginx_start() {
    local conf=$tmp/nginx/nginx.conf attempt i temp_paths='' m
    mkdir -p "$tmp/nginx"
    # Temporary directories inside $tmp, for the modules this nginx has.
    for m in client_body proxy fastcgi uwsgi scgi; do
        if ! "$bench_nginx" -V 2>&1 | grep -q -- "--without-http_${m}_module"; then
            temp_paths+="    ${m}_temp_path $tmp/nginx/$m;"$'\n'
        fi
    done
    for ((attempt = 0; attempt < 10; attempt++)); do
        server_port=$((20000 + RANDOM % 20000))
        [ -z "$(ss -Htln "sport = :$server_port")" ] || continue
        cat > "$conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
$temp_paths    default_type text/plain;
    server {
        listen 127.0.0.1:$server_port${NC_NGINX_DEFERRED:+ deferred};
        location / { return 200 "Hello, World!"; }
    }
}
EOF
        taskset -c 1 "$bench_nginx" -p "$tmp/nginx/" -c "$conf" \
            -e "$tmp/nginx/error.log" > "$tmp/nginx/out" 2>&1 &
        server_pid=$!
        bench_pids+=("$server_pid")
        for ((i = 0; i < 200; i++)); do
            [ -n "$(ss -Htln "sport = :$server_port")" ] && return 0
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.05
        done
        bench_stop "$server_pid" 1 || true
    done
    echo "churn.sh: nginx did not start:" >&2
    cat "$tmp/nginx/error.log" "$tmp/nginx/out" >&2 2>/dev/null || true
    return 1
}

# ab_run N C: ab on core 0 against the server, its report in $tmp/ab.
ab_run() {
    # -t before -n: -t alone would mean 50,000 requests. -r: a reset
    # connection is counted as failed, not fatal. -s: per-request limit.
    taskset -c 0 timeout 90 ab -q -r -s 10 -t 60 -n "$1" -c "$2" \
        "http://127.0.0.1:$server_port/" > "$tmp/ab" 2>&1
}

# churn_one SERVER RUN: one round for SERVER; appends its result lines.
churn_one() {
    local s=$1 r=$2 complete failed rate t0 t1 calls strace_out
    if [ "$s" = nginx ]; then
        nginx_start || return 1
    else
        bench_server_cmd "$s" || return 1
        bench_start "$tmp/server.out" taskset -c 1 -- "${server_cmd[@]}" || return 1
    fi
    if ! ab_run 1000 10; then
        echo "churn.sh: $s: warm-up failed:" >&2
        sed 's/^/  /' "$tmp/ab" >&2
        bench_stop "$server_pid" || true
        return 1
    fi

    t0=$(bench_cpu_ticks "$server_pid")
    if ! ab_run "$requests" "$concurrency"; then
        echo "churn.sh: $s: ab failed:" >&2
        sed 's/^/  /' "$tmp/ab" >&2
        bench_stop "$server_pid" || true
        return 1
    fi
    t1=$(bench_cpu_ticks "$server_pid")
    complete=$(awk '/^Complete requests:/ { print $3 }' "$tmp/ab")
    failed=$(awk '/^Failed requests:/ { print $3 }' "$tmp/ab")
    rate=$(awk '/^Requests per second:/ { print $4 }' "$tmp/ab")
    if [ -z "$complete" ] || [ "$complete" -eq 0 ] || [ -z "$rate" ]; then
        echo "churn.sh: $s: no result from ab:" >&2
        sed 's/^/  /' "$tmp/ab" >&2
        bench_stop "$server_pid" || true
        return 1
    fi
    [ "$complete" -eq "$requests" ] ||
        echo "churn.sh: $s: only $complete of $requests requests within 60 s" >&2
    [ "${failed:-0}" -eq 0 ] ||
        echo "churn.sh: $s: ab counted $failed failed requests" \
             "($(grep -A3 '^Failed requests' "$tmp/ab" | tail -n +2 | tr -s ' ' | tr '\n' ' '))" >&2
    {
        echo "churn conn_rate $s $rate conn/s"
        awk -v t="$((t1 - t0))" -v hz="$ticks_per_s" -v n="$complete" \
            'BEGIN { printf "churn server_cpu %s %.1f us/conn\n", "'"$s"'", t * 1e6 / hz / n }'
    } >> "$results"

    strace_out=$out_dir/churn-strace-$s-$r.txt
    if bench_strace_attach "$server_pid" "$strace_out"; then
        ab_run "$strace_requests" "$concurrency" || true
        bench_strace_detach
        complete=$(awk '/^Complete requests:/ { print $3 }' "$tmp/ab")
        calls=$(bench_strace_calls "$strace_out" || true)
        if [ -n "$calls" ] && [ -n "$complete" ] && [ "$complete" -gt 0 ]; then
            awk -v c="$calls" -v n="$complete" \
                'BEGIN { printf "churn syscalls %s %.2f calls/conn\n", "'"$s"'", c / n }' \
                >> "$results"
            bench_strace_table "$strace_out" > "$tmp/calls"
            echo "churn syscalls $s, per connection: $(bench_breakdown /dev/null "$tmp/calls" "$complete")" >&2
        else
            echo "churn.sh: $s: no strace count" >&2
        fi
        rm -f "$strace_out.log"
    fi

    if ! bench_stop "$server_pid"; then
        echo "churn.sh: $s: the server did not exit cleanly on SIGTERM" >&2
        return 1
    fi
}

status=0
for ((r = 1; r <= runs; r++)); do
    for s in "${list[@]}"; do
        echo "churn run $r/$runs: $s" >&2
        if ! churn_one "$s" "$r"; then
            echo "churn.sh: $s failed in run $r" >&2
            status=1
        fi
    done
done
grep -E '^churn ' "$results" || true
echo
awk -v runs="$runs" -f "$here/table.awk" "$results" || status=1
exit $status
