#!/usr/bin/env bash
# bench/workers.sh - 1 worker against 2 (nc_workers): http-hello under wrk
# and echo-server under echo-client, requests per second and the server's
# CPU time per request; then how SO_REUSEPORT spreads a few clients
# (bench/spread.c).
#
# Usage: bench/workers.sh
# Environment: RUNS (default 5), WORKERS_SECS (wrk's duration, default 3),
#   WORKERS_CONNS (connections of both loads, default 50),
#   WORKERS_ECHO_COUNT (round trips per echo connection, default 3000),
#   SPREAD_TRIALS (default 300), NC_BUILD (build), NC_BENCH_BIN
#   ($NC_BUILD/bench).
#
# The machine this was written on has 2 cores, and the load generator
# needs CPU too: with 2 workers, wrk (one thread) or echo-client (one
# loop) competes with them for the same 2 cores. Nothing is pinned. So
# the absolute numbers say little; the table reports the median of the
# interleaved runs (1, 2, 1, 2, ...: a slow moment of the machine hits
# both alike) and the ratio 2 workers / 1 worker. CPU per request is the
# server's utime + stime over the run (/proc/PID/stat, all threads)
# divided by the requests.
#
# Output: lines in bench/run.sh's format ("workers JOB LIB VALUE UNIT"),
# then a table on stdout, then spread's table on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
trap bench_cleanup EXIT

runs=${RUNS:-5}
secs=${WORKERS_SECS:-3}
conns=${WORKERS_CONNS:-50}
echo_count=${WORKERS_ECHO_COUNT:-3000}
tick_ns=$((1000000000 / $(getconf CLK_TCK)))
bin=$bench_build/bin

for tool in "$bin/http-hello" "$bin/echo-server" "$bin/echo-client" \
    "$bench_bin/spread"; do
    [ -x "$tool" ] || { echo "bench/workers.sh: $tool is missing; run make bench" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench/workers.sh: wrk is missing (make bench-deps)" >&2; exit 1; }

out=$(mktemp -d "${TMPDIR:-/tmp}/nc-workers.XXXXXX")
results=$out/results
trap 'bench_cleanup; rm -rf "$out"' EXIT

# http THREADS: one wrk run against http-hello with THREADS workers.
http() {
    bench_start "$out/server" -- "$bin/http-hello" --listen 127.0.0.1:0 \
        --threads "$1"
    local t0 t1 reqs rps
    t0=$(bench_cpu_ticks "$server_pid")
    wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$server_port/" > "$out/wrk"
    t1=$(bench_cpu_ticks "$server_pid")
    bench_stop "$server_pid" || { echo "bench: http-hello failed" >&2; exit 1; }
    reqs=$(awk '/requests in/ { print $1 }' "$out/wrk")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out/wrk")
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { cat "$out/wrk" >&2; exit 1; }
    echo "workers http_rate $1w $rps req/s" >> "$results"
    awk -v t=$((t1 - t0)) -v ns="$tick_ns" -v n="$reqs" \
        'BEGIN { printf "workers http_cpu %sw %.0f ns/req\n", "'"$1"'", t * ns / n }' >> "$results"
}

# echo THREADS: echo-client's load against echo-server with THREADS.
echo_load() {
    bench_start "$out/server" -- "$bin/echo-server" --listen 127.0.0.1:0 \
        --threads "$1"
    local t0 t1 rts rate
    t0=$(bench_cpu_ticks "$server_pid")
    "$bin/echo-client" "127.0.0.1:$server_port" --count "$echo_count" \
        --connections "$conns" > "$out/client"
    t1=$(bench_cpu_ticks "$server_pid")
    bench_stop "$server_pid" || { echo "bench: echo-server failed" >&2; exit 1; }
    rts=$((echo_count * conns))
    rate=$(sed -n 's/.*: \([0-9.]*\) round trips\/s.*/\1/p' "$out/client")
    [ -n "$rate" ] || { cat "$out/client" >&2; exit 1; }
    echo "workers echo_rate $1w $rate rt/s" >> "$results"
    awk -v t=$((t1 - t0)) -v ns="$tick_ns" -v n="$rts" \
        'BEGIN { printf "workers echo_cpu %sw %.0f ns/rt\n", "'"$1"'", t * ns / n }' >> "$results"
}

: > "$results"
for ((r = 1; r <= runs; r++)); do
    for threads in 1 2; do
        echo "run $r/$runs: $threads worker(s)" >&2
        http "$threads"
        echo_load "$threads"
    done
done
cat "$results"

echo
echo "1 worker against 2, median of $runs interleaved runs; 2 cores shared"
echo "with the load generator (wrk -t1 -c$conns, echo-client -c$conns):"
echo
awk '
    { v[$2 " " $3] = v[$2 " " $3] " " $4; unit[$2] = $5 }
    function median(list,   a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        print "| job | 1 worker | 2 workers | 2 / 1 |"
        print "|---|---:|---:|---:|"
        split("http_rate http_cpu echo_rate echo_cpu", jobs, " ")
        for (k = 1; k <= 4; k++) {
            j = jobs[k]
            a = median(v[j " 1w"]); b = median(v[j " 2w"])
            printf "| %s (%s) | %.0f | %.0f | %.2f |\n", j, unit[j], a, b, a ? b / a : 0
        }
    }' "$results"

echo
echo "How SO_REUSEPORT spreads a few clients (bench/spread.c):" >&2
"$bench_bin/spread" "${SPREAD_TRIALS:-300}" > "$out/spread"
