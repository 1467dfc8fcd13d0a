#!/usr/bin/env bash
# bench/proxy.sh - examples/tcp-proxy against HAProxy and socat: the same
# loads through each proxy, CPU per MiB streamed, CPU and system calls per
# proxied connection, keep-alive requests per second and CPU per request,
# and user-space memory per idle pair, plain and TLS (issue 22).
#
# Usage: [RUNS=3] bash bench/proxy.sh [JOB...]
#   JOB: stream1 stream50 churn keepalive tls_stream1 tls_churn
#   tls_keepalive idle idle_tls idle_tls_hello idle_tls_silent (default
#   all, in this order).
# Environment: RUNS (3); PROXY_PLAIN, the proxies of the plain jobs
#   (default: libnetcore nc-epoll nc-splice nc-splice-epoll haproxy
#   haproxy-splice socat); PROXY_TLS, those of the TLS jobs (libnetcore
#   nc-epoll haproxy socat); PROXY_STREAM_MIB (1024), PROXY_STREAM_CONNS
#   (50), PROXY_CHURN_REQUESTS (10000), PROXY_TLS_CHURN_REQUESTS (2000),
#   PROXY_CHURN_CONCURRENCY (50), PROXY_KEEPALIVE_CONNS (100),
#   PROXY_KEEPALIVE_SECS (3), PROXY_IDLE_PAIRS (9000),
#   PROXY_IDLE_HANDSHAKES (2000), PROXY_IDLE_WARMUP (300),
#   PROXY_IDLE_SPLICE_PAIRS (2500, the pairs of the idle jobs for
#   tcp-proxy --splice, whose idle pairs hold pipes), PROXY_STRACE
#   (1; 0 leaves out the strace runs), PROXY_STRACE_MIB (256),
#   PROXY_STRACE_REQUESTS (2000), NC_BUILD (build), NC_BENCH_BIN
#   ($NC_BUILD/bench), NC_BENCH_OUT (where the results and strace's
#   tables are kept, default $NC_BUILD/bench-out), NC_HAPROXY
#   (/usr/sbin/haproxy), NC_SOCAT (socat on PATH), PROXY_NC_ENV (words
#   VAR=VALUE put in tcp-proxy's environment, for experiments: e.g.
#   GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456).
#
# The proxies, each listening on 127.0.0.1 only, pinned to core 1
# (taskset -c 1), one process with one event loop (socat: one process
# per connection, all on core 1):
#   libnetcore       examples/tcp-proxy with NC_BACKEND=io_uring (the
#                    library's default where io_uring works; forced, and
#                    checked from /proc/PID/fd)
#   nc-epoll         the same with NC_BACKEND=epoll
#   nc-splice        tcp-proxy --splice (plain only: the kernel moves the
#                    bytes through 1 MiB pipes), on io_uring
#   nc-splice-epoll  the same on epoll
#   haproxy          HAProxy (Debian's package), its configuration in a
#                    temporary directory: nbthread 1, mode tcp, maxconn
#                    9900, bind ... [ssl crt FILE] for TLS; no logging
#   haproxy-splice   the same with option splice-request and
#                    splice-response (splice both ways whenever it can:
#                    splice-auto, its heuristic, never spliced these
#                    loads), tune.pipesize 1 MiB like tcp-proxy's pipes,
#                    maxconn 4000 and maxpipes 2000 (plain only)
#   socat            socat TCP-LISTEN (OPENSSL-LISTEN for TLS) with fork
#                    and backlog=1024, one child per connection
# Every tcp-proxy runs with --max-per-addr 0 (the loads open more than 128
# connections from 127.0.0.1) and --idle-timeout 300, HAProxy with
# timeout client and server 300s: no pair times out during a load. The
# TLS proxies terminate TLS with the certificate of tests/tls-certs.sh
# (ECDSA P-256; `make bench` puts it in $NC_BUILD/bench/tls-certs) and
# speak plain TCP to the upstream. The clients offer TLS 1.3 only.
#
# The load runs on core 0: the clients, and the upstream, a fresh one
# for every measurement: bench/proxy_load sink for the streams and the
# idle pairs (it reads and discards, and answers each request with its
# length: bench/proxy_load.c), examples/http-hello --max-per-addr 0 for
# the HTTP loads. Jobs (servers interleaved in every run, a fresh proxy
# for each):
#   stream1      one connection sends PROXY_STREAM_MIB MiB (after a 16 MiB
#                warm-up): rate in MiB/s, the proxy's CPU per MiB, and,
#                in a separate run of PROXY_STRACE_MIB MiB with strace -f
#                -c attached, its system calls per MiB;
#   stream50     PROXY_STREAM_CONNS connections at once, PROXY_STREAM_MIB
#                MiB in all (warm-up: 1 MiB each): rate, CPU per MiB;
#   churn        ab -n PROXY_CHURN_REQUESTS -c PROXY_CHURN_CONCURRENCY
#                (HTTP/1.0: a new connection per request, through the
#                proxy to http-hello, which closes after the answer; 1,000
#                first as warm-up): connections per second, the proxy's CPU
#                per connection, and with strace, in a separate run of
#                PROXY_STRACE_REQUESTS, its system calls per connection;
#   keepalive    wrk -t1 -c PROXY_KEEPALIVE_CONNS for PROXY_KEEPALIVE_SECS
#                (1 s first as warm-up): requests per second, CPU per
#                request, and system calls per request over a 2 s run
#                with strace;
#   tls_stream1, tls_churn, tls_keepalive: the same through a TLS
#                proxy (ab -n PROXY_TLS_CHURN_REQUESTS: every connection is
#                a full handshake; 200 first as warm-up);
#   idle         proxy_load idle used: PROXY_IDLE_PAIRS connections, each
#                one request of 16 bytes through the proxy and its answer,
#                then kept idle: the growth of the proxy's VmRSS divided
#                by the pairs (after a warm-up of PROXY_IDLE_WARMUP
#                connections opened and closed, and as many opened and
#                kept: bench/proxy_load.c says why);
#   idle_tls     the same through a TLS proxy, every handshake done;
#   idle_tls_hello   PROXY_IDLE_HANDSHAKES clients that send a ClientHello,
#                read nothing and stay: abandoned handshakes (fewer, so
#                that they are measured before tcp-proxy's 10 s handshake
#                timeout);
#   idle_tls_silent  as many that connect to the TLS proxy and send
#                nothing.
#   Each idle job also reports the proxy's descriptors per pair (fds).
#   tcp-proxy --splice runs them with PROXY_IDLE_SPLICE_PAIRS pairs: each
#   of its idle pairs that moved bytes keeps two pipes (measured: about
#   5.3 descriptors a pair), so 9,000 would not fit.
# The idle jobs leave socat out: it forks a process per connection, so
# what a pair costs it is a process, not a figure comparable to one
# process's RSS growth; tls_keepalive leaves it out too (below). The CPU time is the proxy's (every thread, and for
# socat its children, reaped or live: proxy_load cpu), read before and
# after the measured load; it includes the load's connection setup, which
# matters for socat only (100 forks in a keep-alive run).
#
# Bounds: the proxy holds at most 2 x (PAIRS + WARMUP) + a few
# descriptors (the limit is 20,000 per process here: 9,000 pairs fit);
# every client has a time limit (timeout 300, ab -t 60, proxy_load's own).
# Output: lines "JOB METRIC PROXY VALUE UNIT", kept in
# NC_BENCH_OUT/proxy-results.txt, e.g.
#   stream1 cpu libnetcore 350.2 us/MiB
#   idle_tls mem haproxy 1234.5 B/pair
# then a table of medians with the ratios of libnetcore's rows to
# HAProxy's (rates inverted: below 1.00 always favours libnetcore).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

runs=${RUNS:-3}
plain_proxies=${PROXY_PLAIN:-libnetcore nc-epoll nc-splice nc-splice-epoll haproxy haproxy-splice socat}
tls_proxies=${PROXY_TLS:-libnetcore nc-epoll haproxy socat}
stream_mib=${PROXY_STREAM_MIB:-1024}
stream_conns=${PROXY_STREAM_CONNS:-50}
churn_requests=${PROXY_CHURN_REQUESTS:-10000}
tls_churn_requests=${PROXY_TLS_CHURN_REQUESTS:-2000}
churn_concurrency=${PROXY_CHURN_CONCURRENCY:-50}
ka_conns=${PROXY_KEEPALIVE_CONNS:-100}
ka_secs=${PROXY_KEEPALIVE_SECS:-3}
idle_pairs=${PROXY_IDLE_PAIRS:-9000}
idle_handshakes=${PROXY_IDLE_HANDSHAKES:-2000}
idle_warmup=${PROXY_IDLE_WARMUP:-300}
idle_splice_pairs=${PROXY_IDLE_SPLICE_PAIRS:-2500}
use_strace=${PROXY_STRACE:-1}
strace_mib=${PROXY_STRACE_MIB:-256}
strace_requests=${PROXY_STRACE_REQUESTS:-2000}
haproxy=${NC_HAPROXY:-/usr/sbin/haproxy}
socat=${NC_SOCAT:-$(command -v socat || echo socat)}
out_dir=${NC_BENCH_OUT:-$bench_build/bench-out}
load=$bench_bin/proxy_load
proxy_bin=$bench_build/bin/tcp-proxy
hello_bin=$bench_build/bin/http-hello
certs=${NC_BENCH_TLS_CERTS:-$bench_build/bench/tls-certs}
all_jobs=(stream1 stream50 churn keepalive tls_stream1 tls_churn tls_keepalive
          idle idle_tls idle_tls_hello idle_tls_silent)
jobs=("$@")
[ ${#jobs[@]} -gt 0 ] || jobs=("${all_jobs[@]}")

bench_need proxy.sh ab wrk strace taskset timeout ss "$load" "$proxy_bin" \
    "$hello_bin" "$haproxy" "$socat"
for job in "${jobs[@]}"; do
    [[ " ${all_jobs[*]} " == *" $job "* ]] || {
        echo "proxy.sh: unknown job '$job' (jobs: ${all_jobs[*]})" >&2; exit 2; }
done
if [ "$(nproc)" -lt 2 ]; then
    echo "proxy.sh: needs 2 cores (the proxy on core 1, the load on core 0)" >&2
    exit 1
fi
if [ ! -f "$certs/server.pem" ] || [ ! -f "$certs/server.key" ]; then
    echo "proxy.sh: $certs/server.pem is missing; build with make bench" >&2
    exit 1
fi
if [ -s /run/haproxy.pid ] && kill -0 "$(cat /run/haproxy.pid)" 2>/dev/null; then
    echo "proxy.sh: note: a haproxy service runs (PID $(cat /run/haproxy.pid)," \
         "/run/haproxy.pid); make bench-deps stops it" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-proxy.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
mkdir -p "$out_dir"
results=$out_dir/proxy-results.txt
: > "$results"
# HAProxy wants the certificate and its key in one file.
cat "$certs/server.pem" "$certs/server.key" > "$tmp/haproxy.pem"

# proxies_for JOB: the proxies that run JOB.
proxies_for() {
    local p list=
    case $1 in
    tls_* | idle_tls*) list=$tls_proxies ;;
    *) list=$plain_proxies ;;
    esac
    case $1 in
    idle*)
        # socat: a process per pair (see above); splicing changes
        # nothing for pairs that do not move bytes.
        for p in $list; do
            case $p in socat | haproxy-splice | nc-splice-epoll) ;; *) echo "$p" ;; esac
        done ;;
    tls_keepalive)
        # socat: every connection costs it a process that reads the
        # certificate and the CA store (about 28 ms of CPU, tls_churn):
        # 100 of them take most of a keep-alive run, and no figure per
        # request would be about requests.
        for p in $list; do [ "$p" = socat ] || echo "$p"; done ;;
    *) for p in $list; do echo "$p"; done ;;
    esac
}

# free_port: set proxy_port to a port of 127.0.0.1 below the ephemeral
# range that no socket uses, for HAProxy and socat, which cannot be asked
# to take one from the kernel. (Not in a subshell: RANDOM would repeat.)
free_port() {
    local i
    for ((i = 0; i < 50; i++)); do
        proxy_port=$((20000 + RANDOM % 12000))
        [ -n "$(ss -Htan "sport = :$proxy_port")" ] || return 0
    done
    echo "proxy.sh: no free port found" >&2
    return 1
}

# wait_listening PID PORT: until PORT listens (at most 10 s).
wait_listening() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ -n "$(ss -Htln "sport = :$2")" ] && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# upstream_start sink|http: the upstream on core 0; sets up_pid, up_port.
upstream_start() {
    local cmd
    if [ "$1" = sink ]; then
        cmd=("$load" sink)
    else
        cmd=("$hello_bin" --listen 127.0.0.1:0 --max-per-addr 0)
    fi
    bench_start "$tmp/upstream.out" taskset -c 0 -- "${cmd[@]}" || return 1
    up_pid=$server_pid
    up_port=$server_port
}

# proxy_start PROXY TLS(0|1): the proxy on core 1, forwarding to
# up_port; sets proxy_pid and proxy_port.
proxy_start() {
    local p=$1 tls=$2 cmd backend=io_uring splice=
    case $p in
    libnetcore | nc-epoll | nc-splice | nc-splice-epoll)
        case $p in *epoll) backend=epoll ;; esac
        case $p in nc-splice*) splice=--splice ;; esac
        # shellcheck disable=SC2206 # words on purpose
        cmd=(env "NC_BACKEND=$backend" ${PROXY_NC_ENV:-} "$proxy_bin" --listen 127.0.0.1:0
             --to "127.0.0.1:$up_port" --max-per-addr 0 --idle-timeout 300)
        [ -z "$splice" ] || cmd+=("$splice")
        [ "$tls" = 0 ] || cmd+=(--tls-cert "$certs/server.pem"
                                --tls-key "$certs/server.key")
        bench_start "$tmp/proxy.out" taskset -c 1 -- "${cmd[@]}" || return 1
        proxy_pid=$server_pid
        proxy_port=$server_port
        check_backend "$p" "$backend" ;;
    haproxy | haproxy-splice)
        free_port || return 1
        {
            # maxconn: 2 descriptors a connection, and a few more, within
            # the 20,000 a process may have. With splice, HAProxy also
            # reserves 2 per pipe: fewer connections (the idle jobs do
            # not run it), and pipes of 1 MiB like tcp-proxy's.
            echo "global"
            echo "    nbthread 1"
            if [ "$p" = haproxy ]; then
                echo "    maxconn 9900"
            else
                echo "    maxconn 4000"
                echo "    maxpipes 2000"
                echo "    tune.pipesize 1048576"
            fi
            echo "defaults"
            echo "    mode tcp"
            echo "    timeout connect 10s"
            echo "    timeout client 300s"
            echo "    timeout server 300s"
            if [ "$p" != haproxy ]; then
                echo "    option splice-request"
                echo "    option splice-response"
            fi
            echo "frontend proxy"
            if [ "$tls" = 0 ]; then
                echo "    bind 127.0.0.1:$proxy_port"
            else
                echo "    bind 127.0.0.1:$proxy_port ssl crt $tmp/haproxy.pem"
            fi
            echo "    default_backend upstream"
            echo "backend upstream"
            echo "    server up 127.0.0.1:$up_port"
        } > "$tmp/haproxy.cfg"
        taskset -c 1 "$haproxy" -db -f "$tmp/haproxy.cfg" > "$tmp/proxy.out" 2>&1 &
        proxy_pid=$!
        bench_pids+=("$proxy_pid")
        wait_listening "$proxy_pid" "$proxy_port" || {
            echo "proxy.sh: haproxy did not start:" >&2
            sed 's/^/  /' "$tmp/proxy.out" >&2
            bench_stop "$proxy_pid" 1 || true
            return 1
        } ;;
    socat)
        free_port || return 1
        if [ "$tls" = 0 ]; then
            cmd=("TCP-LISTEN:$proxy_port,bind=127.0.0.1,reuseaddr,fork,backlog=1024")
        else
            cmd=("OPENSSL-LISTEN:$proxy_port,bind=127.0.0.1,reuseaddr,fork,backlog=1024,cert=$certs/server.pem,key=$certs/server.key,verify=0")
        fi
        taskset -c 1 "$socat" "${cmd[@]}" "TCP:127.0.0.1:$up_port" \
            > "$tmp/proxy.out" 2>&1 &
        proxy_pid=$!
        bench_pids+=("$proxy_pid")
        wait_listening "$proxy_pid" "$proxy_port" || {
            echo "proxy.sh: socat did not start:" >&2
            sed 's/^/  /' "$tmp/proxy.out" >&2
            bench_stop "$proxy_pid" 1 || true
            return 1
        } ;;
    *) echo "proxy.sh: unknown proxy '$p'" >&2; return 1 ;;
    esac
}

# check_backend PROXY BACKEND: io_uring rows must have a ring, epoll none.
check_backend() {
    local rings
    rings=$(find "/proc/$proxy_pid/fd" -lname 'anon_inode:\[io_uring\]' 2>/dev/null | wc -l)
    if [ "$2" = io_uring ] && [ "$rings" -eq 0 ]; then
        echo "proxy.sh: $1 is not on io_uring here (see netcore-doctor backend)" >&2
        return 1
    fi
    if [ "$2" = epoll ] && [ "$rings" -gt 0 ]; then
        echo "proxy.sh: $1 has an io_uring instance" >&2
        return 1
    fi
}

# proxy_stop PROXY: SIGTERM; tcp-proxy must exit with 0. Children a
# forking proxy left (none once its load ended) are ended by their PIDs.
proxy_stop() {
    local status=0 kids pid
    kids=$(cat /proc/"$proxy_pid"/task/*/children 2>/dev/null || true)
    bench_stop "$proxy_pid" || status=$?
    for pid in $kids; do kill -KILL "$pid" 2>/dev/null || true; done
    case $1 in
    libnetcore | nc-*)
        if [ "$status" -ne 0 ]; then
            echo "proxy.sh: $1 exited with status $status:" >&2
            sed 's/^/  /' "$tmp/proxy.out" >&2
            return 1
        fi ;;
    esac
    return 0
}

# cpu_ns: the proxy's CPU time so far (its children's included, once
# they are gone: at most 10 s of waiting for them).
cpu_ns() {
    "$load" cpu -w 10000 "$proxy_pid"
}

# loadrun OUT CMD...: CMD on core 0, its output in OUT; fails with it.
loadrun() {
    local out=$1
    shift
    if ! taskset -c 0 timeout 300 "$@" > "$out" 2>&1; then
        echo "proxy.sh: the load failed: $*" >&2
        sed 's/^/  /' "$out" >&2
        return 1
    fi
}

# strace_calls COUNT_VAR CMD...: strace -f -c attached to the proxy
# while CMD runs on core 0; the total system calls in COUNT_VAR, the
# breakdown table in $tmp/calls.
strace_calls() {
    local var=$1 f=$out_dir/proxy-strace-$job-$proxy.txt
    shift
    bench_strace_attach "$proxy_pid" "$f" || return 1
    if ! loadrun "$tmp/strace-load" "$@"; then
        bench_strace_detach
        return 1
    fi
    # A forking proxy's children are traced until they exit.
    "$load" cpu -w 10000 "$proxy_pid" > /dev/null
    bench_strace_detach
    rm -f "$f.log"
    bench_strace_table "$f" > "$tmp/calls"
    printf -v "$var" '%s' "$(bench_strace_calls "$f")"
}

# result METRIC VALUE UNIT: a result line of the current job and proxy.
result() {
    echo "$job $1 $proxy $2 $3" >> "$results"
}

job_stream() {
    local conns=$1 tls_arg=() c0 c1 secs calls
    [ "$2" = 0 ] || tls_arg=(--tls)
    if [ "$conns" -eq 1 ]; then
        loadrun "$tmp/load" "$load" stream "${tls_arg[@]}" "$proxy_port" 1 16 || return 1
    else
        loadrun "$tmp/load" "$load" stream "${tls_arg[@]}" "$proxy_port" "$conns" "$conns" || return 1
    fi
    c0=$(cpu_ns)
    loadrun "$tmp/load" "$load" stream "${tls_arg[@]}" "$proxy_port" "$conns" "$stream_mib" || return 1
    c1=$(cpu_ns)
    read -r _ _ _ secs < "$tmp/load"
    result rate "$(awk -v m="$stream_mib" -v s="$secs" 'BEGIN { printf "%.1f", m / s }')" MiB/s
    result cpu "$(awk -v c=$((c1 - c0)) -v m="$stream_mib" 'BEGIN { printf "%.1f", c / 1000 / m }')" us/MiB
    if [ "$use_strace" != 0 ] && [ "$conns" -eq 1 ]; then
        strace_calls calls "$load" stream "${tls_arg[@]}" "$proxy_port" 1 "$strace_mib" || return 1
        result syscalls "$(awk -v c="$calls" -v m="$strace_mib" 'BEGIN { printf "%.2f", c / m }')" calls/MiB
        echo "  $job syscalls $proxy, per MiB: $(bench_breakdown /dev/null "$tmp/calls" "$strace_mib")" >&2
    fi
}

# ab_run OUT N C: ab against the proxy, its report in OUT.
ab_run() {
    # -t before -n: -t alone would mean 50,000 requests. -r: a reset
    # connection is counted as failed, not fatal. -s: per-request limit.
    loadrun "$1" ab -q -r -s 10 -t 60 -n "$2" -c "$3" "$scheme://127.0.0.1:$proxy_port/"
}

job_churn() {
    local n=$churn_requests warm=1000 c0 c1 complete failed rate calls
    if [ "$1" = 1 ]; then n=$tls_churn_requests; warm=200; fi
    ab_run "$tmp/ab" "$warm" 10 || return 1
    c0=$(cpu_ns)
    ab_run "$tmp/ab" "$n" "$churn_concurrency" || return 1
    c1=$(cpu_ns)
    complete=$(awk '/^Complete requests:/ { print $3 }' "$tmp/ab")
    failed=$(awk '/^Failed requests:/ { print $3 }' "$tmp/ab")
    rate=$(awk '/^Requests per second:/ { print $4 }' "$tmp/ab")
    if [ -z "$complete" ] || [ "$complete" -eq 0 ] || [ -z "$rate" ]; then
        echo "proxy.sh: $job $proxy: no result from ab:" >&2
        sed 's/^/  /' "$tmp/ab" >&2
        return 1
    fi
    if [ "$complete" -lt "$n" ]; then
        echo "proxy.sh: $job $proxy: only $complete of $n requests within 60 s:" >&2
        grep -v -e '^ *$' -e '^[A-Z][A-Za-z /]*: ' "$tmp/ab" | sed 's/^/  /' | tail -n 5 >&2 || true
        # ab gives up after a 10 s stall: not a figure to keep.
        [ "$complete" -ge $((n / 2)) ] || return 1
    fi
    [ "${failed:-0}" -eq 0 ] ||
        echo "proxy.sh: $job $proxy: ab counted $failed failed requests" >&2
    [ "$1" = 0 ] || grep -h '^SSL/TLS Protocol' "$tmp/ab" | sed "s/^/  $proxy: /" >&2 || true
    result rate "$rate" conn/s
    result cpu "$(awk -v c=$((c1 - c0)) -v n="$complete" 'BEGIN { printf "%.1f", c / 1000 / n }')" us/conn
    if [ "$use_strace" != 0 ]; then
        n=$strace_requests
        [ "$1" = 0 ] || n=$((strace_requests / 4))
        strace_calls calls ab -q -r -s 10 -t 60 -n "$n" -c "$churn_concurrency" \
            "$scheme://127.0.0.1:$proxy_port/" || return 1
        complete=$(awk '/^Complete requests:/ { print $3 }' "$tmp/strace-load")
        result syscalls "$(awk -v c="$calls" -v n="$complete" 'BEGIN { printf "%.2f", c / n }')" calls/conn
        echo "  $job syscalls $proxy, per connection: $(bench_breakdown /dev/null "$tmp/calls" "$complete")" >&2
    fi
}

# wrk_requests FILE: the requests wrk counted; warns about errors.
wrk_requests() {
    if grep -q -e 'Non-2xx' -e 'Socket errors' "$1"; then
        echo "proxy.sh: $job $proxy: wrk: $(grep -e 'Non-2xx' -e 'Socket errors' "$1" | tr -s ' ')" >&2
    fi
    awk '/ requests in / { print $1 }' "$1"
}

job_keepalive() {
    local c0 c1 requests rate calls
    loadrun "$tmp/wrk" wrk -t1 -c"$ka_conns" -d1s "$scheme://127.0.0.1:$proxy_port/" || return 1
    c0=$(cpu_ns)
    loadrun "$tmp/wrk" wrk -t1 -c"$ka_conns" -d"${ka_secs}s" "$scheme://127.0.0.1:$proxy_port/" || return 1
    c1=$(cpu_ns)
    requests=$(wrk_requests "$tmp/wrk")
    rate=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk")
    if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
        echo "proxy.sh: $job $proxy: no result from wrk:" >&2
        sed 's/^/  /' "$tmp/wrk" >&2
        return 1
    fi
    result rate "$rate" req/s
    result cpu "$(awk -v c=$((c1 - c0)) -v n="$requests" 'BEGIN { printf "%.2f", c / 1000 / n }')" us/req
    if [ "$use_strace" != 0 ]; then
        strace_calls calls wrk -t1 -c"$ka_conns" -d2s "$scheme://127.0.0.1:$proxy_port/" || return 1
        requests=$(wrk_requests "$tmp/strace-load")
        result syscalls "$(awk -v c="$calls" -v n="$requests" 'BEGIN { printf "%.3f", c / n }')" calls/req
        echo "  $job syscalls $proxy, per request: $(bench_breakdown /dev/null "$tmp/calls" "$requests")" >&2
    fi
}

job_idle() {
    local mode=$1 pairs=$2 line
    # A spliced pair that moved bytes keeps 2 pipes (4 descriptors) when
    # idle: fewer of them fit in the 20,000 descriptors.
    case $proxy in nc-splice*) [ "$pairs" -le "$idle_splice_pairs" ] || pairs=$idle_splice_pairs ;; esac
    loadrun "$tmp/idle" "$load" idle "$mode" "$proxy_pid" "$proxy_port" \
        "$pairs" "$idle_warmup" || return 1
    line=$(grep '^idle ' "$tmp/idle")
    grep -v '^idle ' "$tmp/idle" | sed "s/^/  $proxy: /" >&2 || true
    result mem "$(echo "$line" | awk '{ print $NF }')" B/pair
    result fds "$(echo "$line" | awk '{ printf "%.2f", ($5 - $4) / $3 }')" fd/pair
}

# one JOB PROXY: a fresh upstream and proxy, the job, both stopped.
one() {
    local tls=0 up=sink status=0
    case $job in tls_* | idle_tls*) tls=1 ;; esac
    case $job in churn | keepalive | tls_churn | tls_keepalive) up=http ;; esac
    scheme=http
    [ "$tls" = 0 ] || scheme=https
    upstream_start "$up" || return 1
    if ! proxy_start "$proxy" "$tls"; then
        bench_stop "$up_pid" || true
        return 1
    fi
    case $job in
    stream1 | tls_stream1) job_stream 1 "$tls" || status=1 ;;
    stream50) job_stream "$stream_conns" 0 || status=1 ;;
    churn | tls_churn) job_churn "$tls" || status=1 ;;
    keepalive | tls_keepalive) job_keepalive || status=1 ;;
    idle) job_idle used "$idle_pairs" || status=1 ;;
    idle_tls) job_idle tls-used "$idle_pairs" || status=1 ;;
    idle_tls_hello) job_idle tls-hello "$idle_handshakes" || status=1 ;;
    idle_tls_silent) job_idle connect "$idle_handshakes" || status=1 ;;
    esac
    proxy_stop "$proxy" || status=1
    bench_stop "$up_pid" || { echo "proxy.sh: the upstream did not exit cleanly" >&2; status=1; }
    return $status
}

echo "proxy.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "$("$haproxy" -v | head -n 1 | cut -d' ' -f1-3), $("$socat" -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p')" >&2
status=0
for ((r = 1; r <= runs; r++)); do
    for job in "${jobs[@]}"; do
        for proxy in $(proxies_for "$job"); do
            echo "proxy run $r/$runs: $job, $proxy" >&2
            if ! one; then
                echo "proxy.sh: $proxy failed in $job, run $r" >&2
                status=1
            fi
        done
    done
done
echo "proxy.sh: done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo
echo "Medians of $runs interleaved runs. The proxy on core 1, the load on core 0."
echo "libnetcore = examples/tcp-proxy on io_uring; nc-epoll on epoll; nc-splice*"
echo "with --splice. Ratios: libnetcore's rows over HAProxy's (rates inverted:"
echo "below 1.00 favours libnetcore)."
echo
awk '
    NF == 5 && $4 ~ /^[0-9.]+$/ {
        key = $1 " " $2
        if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key; unit[key] = $5 }
        if (!($3 in pseen)) { pseen[$3] = 1; found[++nfound] = $3 }
        val[key, $3, ++count[key, $3]] = $4
    }
    function median(key, p,    n, i, j, t, a) {
        n = count[key, p]
        for (i = 1; i <= n; i++) a[i] = val[key, p, i]
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function ratio(mine, other, rate) {
        if (mine == "" || other == "" || mine == 0 || other == 0) return "-"
        return sprintf("%.2f", rate ? other / mine : mine / other)
    }
    function num(v) { return v == "" ? "-" : sprintf(v < 10 ? "%.2f" : "%.1f", v) }
    END {
        if (nkeys == 0) { print "proxy.sh: no results" > "/dev/stderr"; exit 1 }
        # Columns in this order, then any other proxy as found.
        n = split("libnetcore nc-epoll nc-splice nc-splice-epoll haproxy haproxy-splice socat", pref, " ")
        for (i = 1; i <= n; i++) if (pref[i] in pseen) { procs[++nprocs] = pref[i]; placed[pref[i]] = 1 }
        for (i = 1; i <= nfound; i++) if (!(found[i] in placed)) procs[++nprocs] = found[i]
        for (i = 1; i <= nprocs; i++)
            if (procs[i] == "libnetcore" || procs[i] ~ /^nc-/) mine[++nmine] = procs[i]
        both = ("nc-splice" in pseen) && ("haproxy-splice" in pseen)
        printf "| job | unit |"
        for (i = 1; i <= nprocs; i++) printf " %s |", procs[i]
        for (i = 1; i <= nmine; i++) printf " %s / haproxy |", mine[i]
        if (both) printf " nc-splice / haproxy-splice |"
        printf "\n|---|---|"
        for (i = 1; i <= nprocs + nmine + both; i++) printf "---:|"
        printf "\n"
        for (k = 1; k <= nkeys; k++) {
            key = order[k]; rate = unit[key] ~ /\/s$/
            split("", med)
            for (i = 1; i <= nprocs; i++)
                if ((key, procs[i]) in count) med[procs[i]] = median(key, procs[i])
            printf "| %s | %s |", key, unit[key]
            for (i = 1; i <= nprocs; i++) printf " %s |", num(med[procs[i]])
            for (i = 1; i <= nmine; i++) printf " %s |", ratio(med[mine[i]], med["haproxy"], rate)
            if (both) printf " %s |", ratio(med["nc-splice"], med["haproxy-splice"], rate)
            printf "\n"
        }
    }' "$results" || status=1
exit $status
