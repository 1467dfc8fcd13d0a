#!/usr/bin/env bash
# bench/tls_callgrind.sh - user-space instructions and system calls of the
# TLS echo servers of bench_tls_<lib> (bench/tls_load.h), per handshake
# and per MiB streamed: where the CPU time of bench/tls.sh goes, counted
# rather than timed.
#
# Usage: bench/tls_callgrind.sh [SERVER...]   SERVER: libnetcore libevent
#   (default both).
# Environment: TLS_CG_HS1 (100) and TLS_CG_HS2 (500) handshakes,
#   TLS_CG_MIB1 (8) and TLS_CG_MIB2 (40) MiB, NC_BUILD (build),
#   NC_BENCH_BIN ($NC_BUILD/bench), NC_BENCH_OUT (where the callgrind and
#   strace files are kept, default $NC_BUILD/bench-out).
#
# The server is `bench_tls_<lib> --serve`; the load is the same program's
# client, `--load PORT handshakes N 1` (one connection at a time, each a
# full handshake, a 64-byte echo and the close) or `--load PORT bulk MiB`
# (one connection streaming MiB through the echo). For each server and
# each job:
#   callgrind  the server under valgrind --tool=callgrind, which counts
#              every user-space instruction it executes (OpenSSL, libc
#              and the event library included, the kernel not);
#   memcpy     the part of that count spent in memcpy/memmove. Valgrind
#              counts each byte a "rep movsb" copies as one instruction,
#              and glibc copies blocks of a few KiB and more that way, so
#              this row is about the bytes copied in large blocks, not
#              their cost (a few hundredths of a cycle per byte);
#   syscalls   the server on its own with strace -f -c attached.
# Each is done twice (HS1 and HS2 handshakes, MIB1 and MIB2 MiB) and the
# result is (count2 - count1) / (N2 - N1): start-up, the client's 20
# warm-up handshakes and shut-down cancel out. Both counts are
# deterministic up to how events happen to batch. The breakdowns, of the
# instructions by object (libcrypto, libssl, libc, the event library or
# the program) and of the system calls by call, go to stderr, the files
# to NC_BENCH_OUT (read them with callgrind_annotate). About 2 minutes.
# Output: lines in bench/run.sh's format, e.g.
#   callgrind tls_handshake libnetcore 2780000 Ir/hs
#   callgrind tls_bulk_memcpy libevent 1450000 Ir/MiB
#   syscalls tls_bulk libnetcore 84.6 calls/MiB
# then the table (bench/table.awk).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

hs1=${TLS_CG_HS1:-100}
hs2=${TLS_CG_HS2:-500}
mib1=${TLS_CG_MIB1:-8}
mib2=${TLS_CG_MIB2:-40}
out_dir=${NC_BENCH_OUT:-$bench_build/bench-out}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(libnetcore libevent)

for tool in valgrind callgrind_annotate strace; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "tls_callgrind.sh: $tool is missing (make bench-deps installs it)" >&2
        exit 1
    fi
done
if [ "$hs2" -le "$hs1" ] || [ "$mib2" -le "$mib1" ]; then
    echo "tls_callgrind.sh: TLS_CG_HS2 and TLS_CG_MIB2 must be larger than" \
         "TLS_CG_HS1 and TLS_CG_MIB1" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-tls-callgrind.XXXXXX")
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
mkdir -p "$out_dir"
results=$tmp/results
: > "$results"

# load JOB N: the client of the server's own program; valgrind is slow,
# so the time limit is generous.
load() {
    local args=(handshakes "$2" 1)
    [ "$1" = bulk ] && args=(bulk "$2")
    timeout 1900 "${server_cmd[0]}" --load "$server_port" "${args[@]}" \
        2> "$tmp/client" || {
        echo "tls_callgrind.sh: the load failed:" >&2
        sed 's/^/  /' "$tmp/client" >&2
        return 1
    }
}

# memcpy_ir FILE: the self Ir of memcpy and memmove (every variant glibc
# picks) in callgrind's FILE.
memcpy_ir() {
    callgrind_annotate --threshold=100 "$1" 2> /dev/null |
        awk '/:__mem(cpy|move)[_a-z0-9]* \[/ { gsub(",", "", $1); s += $1 }
             END { print s + 0 }'
}

# by_object FILE: "object Ir" per shared object (or program) of the self
# Ir in callgrind's FILE: where the instructions are, OpenSSL's
# (libcrypto, libssl), libc's, or the event library's.
by_object() {
    callgrind_annotate --threshold=100 "$1" 2> /dev/null |
        awk '/^ *[0-9,]+ .*\[.*\]$/ {
                 v = $1; gsub(",", "", v); o = $NF; gsub(/[][]/, "", o)
                 n = split(o, p, "/"); s[p[n]] += v
             }
             END { for (k in s) print k, s[k] }' | sort
}

# Not in $(...) subshells: the PIDs the helpers remember must stay in this
# shell for the cleanup on exit. Results are left in $count (and $copies).

# ir SERVER JOB N: count = the server's Ir over the run, copies = its
# memcpy part.
ir() {
    local f=$out_dir/callgrind.out.tls-$1-$2-$3
    bench_start_s=60 bench_start "$tmp/server.out" \
        valgrind --tool=callgrind --callgrind-out-file="$f" -- \
        "${server_cmd[@]}" || return 1
    if ! load "$2" "$3"; then
        bench_stop "$server_pid" 60 || true
        return 1
    fi
    if ! bench_stop "$server_pid" 60; then
        echo "tls_callgrind.sh: $1 did not exit cleanly under valgrind:" >&2
        sed 's/^/  /' "$tmp/server.out" >&2
        return 1
    fi
    count=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    copies=$(memcpy_ir "$f")
    by_object "$f" > "$tmp/objects-$3"
    [ -n "$count" ] && [ -n "$copies" ]
}

# calls SERVER JOB N TABLE: count = the server's system calls over the
# run; the per-call counts go to TABLE.
calls() {
    bench_calls "$out_dir/strace.tls-$1-$2-$3.txt" "$4" "$2" "$3"
}

per_unit() {   # per_unit COUNT1 COUNT2 DIVISOR FORMAT
    awk -v a="$1" -v b="$2" -v d="$3" -v fmt="$4" \
        'BEGIN { printf fmt, (b - a) / d }'
}

status=0
for s in "${servers[@]}"; do
    case $s in
    libnetcore | libevent) server_cmd=("$bench_bin/bench_tls_$s" --serve) ;;
    *) echo "tls_callgrind.sh: unknown server '$s'" >&2; status=1; continue ;;
    esac
    if [ ! -x "${server_cmd[0]}" ]; then
        echo "tls_callgrind.sh: ${server_cmd[0]} is missing; build with make bench" >&2
        status=1
        continue
    fi
    for job in handshake bulk; do
        if [ "$job" = handshake ]; then
            n1=$hs1 n2=$hs2 unit=hs
        else
            n1=$mib1 n2=$mib2 unit=MiB
        fi
        d=$((n2 - n1))
        echo "tls_callgrind: $s, $job: $n1 and $n2 $unit" >&2
        if ir "$s" "$job" "$n1" && ir1=$count && cp1=$copies &&
            ir "$s" "$job" "$n2"; then
            {
                echo "callgrind tls_$job $s $(per_unit "$ir1" "$count" "$d" %.0f) Ir/$unit"
                echo "callgrind tls_${job}_memcpy $s $(per_unit "$cp1" "$copies" "$d" %.0f) Ir/$unit"
            } | tee -a "$results"
            echo "callgrind tls_$job $s, Ir per $unit by object:" \
                 "$(bench_breakdown "$tmp/objects-$n1" "$tmp/objects-$n2" "$d" |
                    sed 's/\.[0-9][0-9]\(,\|$\)/\1/g')" >&2
        else
            echo "tls_callgrind.sh: $s: no instruction count for $job" >&2
            status=1
        fi
        if calls "$s" "$job" "$n1" "$tmp/calls1" && sc1=$count &&
            calls "$s" "$job" "$n2" "$tmp/calls2"; then
            echo "syscalls tls_$job $s $(per_unit "$sc1" "$count" "$d" %.2f) calls/$unit" |
                tee -a "$results"
            echo "syscalls tls_$job $s, per $unit:" \
                 "$(bench_breakdown "$tmp/calls1" "$tmp/calls2" "$d")" >&2
        else
            echo "tls_callgrind.sh: $s: no system call count for $job" >&2
            status=1
        fi
    done
done
echo
awk -v runs=1 -f "$here/table.awk" "$results" || status=1
exit $status
