# shellcheck shell=bash
# bench/lib.sh - shell helpers shared by bench/churn.sh,
# bench/callgrind.sh, bench/workers.sh and bench/backends.sh. Sourced, not
# run.
#
# The servers are the http_<lib> programs of bench/ (mini_server.h), the
# bench_echo_<lib> programs run with --serve (echo_load.h) and, for
# libnetcore, examples/http-hello and examples/echo-server: each prints
# "listening on 127.0.0.1:PORT" once it accepts connections and exits on
# SIGTERM.
# Every process started here is remembered by its PID and ended by that
# PID (bench_cleanup runs on exit); nothing is ever killed by name.

bench_build=${NC_BUILD:-build}
bench_bin=${NC_BENCH_BIN:-$bench_build/bench}

# PIDs of the processes still running, for bench_cleanup.
bench_pids=()

bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    bench_pids=()
}

bench_forget() {
    local pid keep=()
    for pid in "${bench_pids[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    bench_pids=("${keep[@]}")
}

# bench_need SCRIPT THING...: stop SCRIPT (exit 1) with a message unless
# every THING is there: a path (with a slash) must be an executable that
# make bench builds; a name, a command on PATH (make bench-deps).
bench_need() {
    local script=$1 thing
    shift
    for thing in "$@"; do
        if [[ $thing == */* ]]; then
            [ -x "$thing" ] && continue
            echo "$script: $thing is missing; build with make bench" >&2
        else
            command -v "$thing" > /dev/null 2>&1 && continue
            echo "$script: $thing is missing (make bench-deps installs it)" >&2
        fi
        exit 1
    done
}

# bench_server_cmd LIB [PROTO]: set server_cmd to the command line of
# LIB's server (port chosen by the kernel) for PROTO: http (the default)
# or echo. Fails for an unknown or unbuilt one.
# LIB: libnetcore (examples/http-hello or examples/echo-server, on the
# backend the library picks: NC_BACKEND from the environment, else the
# automatic choice), nc-epoll and nc-io_uring (the same programs with
# NC_BACKEND set to that backend: `env` execs them, so the PID stays the
# server's), nc-base (the same programs of a build saved in
# NC_BENCH_BASE, a directory with bin/ and lib/, on io_uring: before and
# after a change in one session), epoll, libev, libevent, libuv (bench/http_<lib>.c, or
# bench_echo_<lib> --serve for echo; epoll is the hand-written floor).
# http-hello and echo-server keep their default idle timeout of 60 s, an
# idle timer per connection that the minimal servers do not have
# (NC_HELLO_IDLE_TIMEOUT=0 turns it off; under callgrind that saves about
# 20 instructions per request at one connection). NC_HELLO_ARGS adds
# options of http-hello's own (for example --defer-accept).
bench_server_cmd() {
    local proto=${2:-http} backend=
    case $proto in
    http | echo) ;;
    *) echo "bench: unknown protocol '$proto'" >&2; return 1 ;;
    esac
    case $1 in
    libnetcore | nc-epoll | nc-io_uring | nc-base)
        local dir=$bench_build
        [ "$1" = libnetcore ] || backend=${1#nc-}
        if [ "$1" = nc-base ]; then
            # A saved build (NC_BENCH_BASE: a directory with its bin/ and
            # lib/) on io_uring: before and after a change, interleaved.
            [ -n "${NC_BENCH_BASE:-}" ] || {
                echo "bench: nc-base needs NC_BENCH_BASE" >&2; return 1; }
            dir=$NC_BENCH_BASE backend=io_uring
        fi
        if [ "$proto" = echo ]; then
            server_cmd=("$dir/bin/echo-server")
        else
            server_cmd=("$dir/bin/http-hello")
        fi
        server_cmd+=(--listen 127.0.0.1:0
                     --idle-timeout "${NC_HELLO_IDLE_TIMEOUT:-60}")
        # shellcheck disable=SC2206
        [ "$proto" = echo ] || [ -z "${NC_HELLO_ARGS:-}" ] ||
            server_cmd+=(${NC_HELLO_ARGS}) ;;
    nc-mini)
        # bench/http_libnetcore.c: libnetcore in the minimal servers'
        # shape (single-threaded, no request validation); HTTP only.
        [ "$proto" = http ] || {
            echo "bench: nc-mini serves HTTP only" >&2; return 1; }
        server_cmd=("$bench_bin/http_libnetcore" 0) ;;
    epoll | libev | libevent | libuv)
        if [ "$proto" = echo ]; then
            server_cmd=("$bench_bin/bench_echo_$1" --serve)
        else
            server_cmd=("$bench_bin/http_$1" 0)
        fi ;;
    *) echo "bench: unknown server '$1'" >&2; return 1 ;;
    esac
    if [ ! -x "${server_cmd[0]}" ]; then
        echo "bench: ${server_cmd[0]} is missing; build with make bench" >&2
        return 1
    fi
    [ -z "$backend" ] || server_cmd=(env "NC_BACKEND=$backend" "${server_cmd[@]}")
}

# bench_start OUT PREFIX... -- CMD...: run PREFIX CMD (PREFIX: e.g.
# taskset -c 1, or valgrind ...; may be empty) in the background with
# stdout and stderr in OUT, wait (at most $bench_start_s seconds, default
# 10) for its "listening on" line. Sets server_pid (the PID of PREFIX's
# process: taskset and valgrind become the server) and server_port.
bench_start() {
    local out=$1 i limit=${bench_start_s:-10}
    shift
    local prefix=()
    while [ "$1" != -- ]; do prefix+=("$1"); shift; done
    shift
    "${prefix[@]}" "$@" > "$out" 2>&1 &
    server_pid=$!
    bench_pids+=("$server_pid")
    server_port=
    for ((i = 0; i < limit * 20; i++)); do
        server_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
                      "$out" | head -n 1)
        [ -n "$server_port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench: $* did not start:" >&2
    sed 's/^/  /' "$out" >&2
    bench_stop "$server_pid" 1 || true
    return 1
}

# bench_stop PID [SECONDS]: SIGTERM, then wait up to SECONDS (default 10)
# for it to exit; SIGKILL after that. Returns its exit status (137 when
# it had to be killed).
bench_stop() {
    local pid=$1 limit=${2:-10} i status=0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: process $pid did not exit on SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    bench_forget "$pid"
    return $status
}

# bench_cpu_ticks PID: utime + stime of PID, in clock ticks.
bench_cpu_ticks() {
    local line rest
    read -r line < "/proc/$1/stat" || return 1
    rest=${line##*) }      # after "(comm) ": comm may hold spaces
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest           # $1 is field 3, the state
    echo $((${12} + ${13}))
}

# bench_strace_attach PID FILE: count PID's system calls (all threads)
# into FILE from now until bench_strace_detach. Sets strace_pid.
bench_strace_attach() {
    local i
    strace -f -c -o "$2" -p "$1" 2> "$2.log" &
    strace_pid=$!
    bench_pids+=("$strace_pid")
    for ((i = 0; i < 200; i++)); do
        grep -q 'attached' "$2.log" 2>/dev/null && return 0
        kill -0 "$strace_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench: strace could not attach to $1:" >&2
    sed 's/^/  /' "$2.log" >&2
    kill -KILL "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    bench_forget "$strace_pid"
    return 1
}

# bench_strace_detach: stop counting; strace writes its table and exits.
bench_strace_detach() {
    local i
    kill -INT "$strace_pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$strace_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    bench_forget "$strace_pid"
}

# bench_strace_calls FILE: the total of the calls column of strace -c.
bench_strace_calls() {
    awk '$NF == "total" { print $4; found = 1 } END { if (!found) exit 1 }' "$1"
}

# bench_strace_table FILE: "name calls" per system call of strace -c.
bench_strace_table() {
    awk '/^-+ / { part++; next }
         part == 1 && NF >= 5 { print $NF, $4 }' "$1"
}

# bench_breakdown FILE1 FILE2 DIVISOR: the per-call difference of two
# "name calls" tables (FILE1 may be /dev/null), divided, largest first:
# "accept4 1.00, epoll_ctl 2.00, ...".
bench_breakdown() {
    awk -v d="$3" '
        FILENAME == ARGV[1] { base[$1] = $2; next }
        { v = ($2 - base[$1]) / d; if (v >= 0.005) printf "%s %.2f\n", $1, v }
    ' "$1" "$2" | sort -k2,2gr | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { print "" }'
}

# bench_calls FILE TABLE LOAD_ARGS...: with the server of server_cmd
# started and strace attached (its output in FILE), run the caller's
# `load LOAD_ARGS...`; then stop the server, write strace's per-call
# table to TABLE and set count to its total number of system calls.
bench_calls() {
    local f=$1 table=$2
    shift 2
    bench_start "$tmp/server.out" -- "${server_cmd[@]}" || return 1
    if ! bench_strace_attach "$server_pid" "$f"; then
        bench_stop "$server_pid" || true
        return 1
    fi
    if ! load "$@"; then
        bench_strace_detach
        bench_stop "$server_pid" || true
        return 1
    fi
    bench_strace_detach
    rm -f "$f.log"
    bench_stop "$server_pid" || {
        echo "${0##*/}: ${server_cmd[0]##*/} did not exit cleanly" >&2
        return 1
    }
    bench_strace_table "$f" > "$table"
    count=$(bench_strace_calls "$f") && [ -n "$count" ]
}
