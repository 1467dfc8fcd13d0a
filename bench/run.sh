#!/usr/bin/env bash
# bench/run.sh - run the benchmark binaries and print a comparison table.
#
# Usage: bench/run.sh [NAME-SUBSTRING]   e.g. bench/run.sh timers
#   Runs every executable bench_* in $NC_BENCH_BIN (default build/bench)
#   whose name contains the substring (all when none is given), RUNS times
#   each (default 5), interleaved: a b c a b c ... so that a slow moment of
#   the machine hits every library alike.
#
# Each binary prints lines "<group> <job> <library> <value> <unit>", e.g.
#   timers start_stop libnetcore 47.1 ns/op
# The table (bench/table.awk) shows the median of every (group, job,
# library), and the ratio of libnetcore to the faster peer library: below
# 1.00 means libnetcore is faster. A library named "epoll" is a
# hand-written epoll loop, the floor: it is left out of the peers and gets
# a ratio column of its own. For rates (a unit ending in "/s") higher is
# better and the ratio is inverted accordingly, so it always reads as
# libnetcore's relative cost.
#
# bench_idle (memory per idle connection) is one of these binaries:
# bench/run.sh idle runs it alone. The benchmarks that drive servers with
# outside tools are scripts of their own: bench/churn.sh (ab, strace,
# nginx) and bench/callgrind.sh (valgrind, strace).
set -euo pipefail

bin_dir=${NC_BENCH_BIN:-build/bench}
runs=${RUNS:-5}
filter=${1:-}

if [ ! -d "$bin_dir" ]; then
    echo "bench/run.sh: $bin_dir does not exist; build with 'make bench'" >&2
    exit 1
fi

bins=()
for b in "$bin_dir"/bench_*; do
    [ -f "$b" ] && [ -x "$b" ] || continue
    case "$(basename "$b")" in *"$filter"*) bins+=("$b") ;; esac
done
if [ ${#bins[@]} -eq 0 ]; then
    echo "bench/run.sh: no bench_*${filter:+ matching '$filter'} in $bin_dir" >&2
    exit 1
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT

for ((r = 1; r <= runs; r++)); do
    for b in "${bins[@]}"; do
        echo "run $r/$runs: $(basename "$b")" >&2
        if ! "$b" >> "$results"; then
            echo "bench/run.sh: $(basename "$b") failed" >&2
            exit 1
        fi
    done
done

awk -v runs="$runs" -f "$(dirname "$0")/table.awk" "$results"
