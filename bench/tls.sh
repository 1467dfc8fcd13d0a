#!/usr/bin/env bash
# bench/tls.sh - the TLS benchmark on its own: bench_tls_libnetcore and
# bench_tls_libevent (bench/tls_load.h), interleaved (libevent,
# libnetcore, libevent, ...), RUNS times (default 7), then the table of
# medians (bench/table.awk), as bench/run.sh tls would print it.
#
# Usage: [RUNS=7] bash bench/tls.sh
# Environment: RUNS, NC_BUILD (build), NC_BENCH_BIN ($NC_BUILD/bench),
#   NC_BENCH_OUT (default $NC_BUILD/bench-out), NC_BENCH_TLS_HANDSHAKES
#   (4000), NC_BENCH_TLS_CONCURRENCY (8), NC_BENCH_TLS_MIB (256), MAKE
#   (make).
#
# Builds the two programs and the certificate ($NC_BUILD/bench/tls-certs,
# from tests/tls-certs.sh) first if they are missing or out of date. Every
# run's lines are kept in NC_BENCH_OUT/tls-results.txt, and what the
# programs say on stderr (what was negotiated, the client's CPU time) in
# NC_BENCH_OUT/tls-notes.txt. `make bench` runs the same programs with
# all the others (bench/run.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."                  # relative paths are from the source tree
build=${NC_BUILD:-build}
bin_dir=${NC_BENCH_BIN:-$build/bench}
out_dir=${NC_BENCH_OUT:-$build/bench-out}
runs=${RUNS:-7}

"${MAKE:-make}" --no-print-directory BUILD="$build" \
    "$build/bench/bench_tls_libnetcore" "$build/bench/bench_tls_libevent" \
    "$build/bench/tls-certs/server.pem" > /dev/null
if [ -z "${NC_BENCH_TLS_CERTS:-}" ] && [ "$bin_dir" != "$build/bench" ]; then
    export NC_BENCH_TLS_CERTS=$build/bench/tls-certs
fi
mkdir -p "$out_dir"
results=$out_dir/tls-results.txt
notes=$out_dir/tls-notes.txt
: > "$results"
: > "$notes"

for ((r = 1; r <= runs; r++)); do
    for lib in libevent libnetcore; do
        echo "run $r/$runs: bench_tls_$lib" >&2
        echo "run $r/$runs: bench_tls_$lib" >> "$notes"
        if ! "$bin_dir/bench_tls_$lib" >> "$results" 2>> "$notes"; then
            echo "bench/tls.sh: bench_tls_$lib failed:" >&2
            sed 's/^/  /' "$notes" >&2
            exit 1
        fi
    done
done
# What was negotiated, once per side; the client's CPU time, as medians
# in the table's form, to stderr: not a comparison, only a hint at which
# side bounds the rates.
grep -h 'server):\|client):' "$notes" | sort -u >&2 || true
sed -n "s/^bench_tls (\(.*\)): the client's CPU: \([0-9.]*\) us\/hs, \([0-9.]*\) us\/MiB$/client handshake_cpu \1 \2 us\/hs\nclient bulk_cpu \1 \3 us\/MiB/p" \
    "$notes" | awk -v runs="$runs" -f "$here/table.awk" >&2 || true
echo >&2
awk -v runs="$runs" -f "$here/table.awk" "$results"
