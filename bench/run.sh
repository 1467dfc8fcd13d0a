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
# The table shows the median of every (group, job, library), and the ratio
# of libnetcore to the faster peer library: below 1.00 means libnetcore is
# faster. A library named "epoll" is a hand-written epoll loop, the floor:
# it is left out of the peers and gets a ratio column of its own.
# For rates (a unit ending in "/s") higher is better and the ratio is
# inverted accordingly, so it always reads as libnetcore's relative cost.
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

awk '
NF == 5 && $4 ~ /^[0-9.]+$/ {
    key = $1 " " $2
    if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
    if (!(($3) in libseen)) { libseen[$3] = 1; libs[++nlibs] = $3 }
    n = ++count[key, $3]
    val[key, $3, n] = $4
    unit[key] = $5
}
function median(key, lib,    n, i, j, t, a) {
    n = count[key, lib]
    for (i = 1; i <= n; i++) a[i] = val[key, lib, i]
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
    if (nkeys == 0) { print "bench/run.sh: no result lines" > "/dev/stderr"; exit 1 }
    printf "%-24s %-8s", "job", "unit"
    for (l = 1; l <= nlibs; l++) printf " %12s", libs[l]
    printf " %22s", "libnetcore/faster peer"
    if ("epoll" in libseen) printf " %16s", "libnetcore/epoll"
    printf "\n"
    for (k = 1; k <= nkeys; k++) {
        key = order[k]
        rate = unit[key] ~ /\/s$/
        printf "%-24s %-8s", key, unit[key]
        best = ""; mine = ""; epoll_m = ""
        for (l = 1; l <= nlibs; l++) {
            lib = libs[l]
            if (!((key, lib) in count)) { printf " %12s", "-"; continue }
            m = median(key, lib)
            printf " %12.1f", m
            if (lib == "epoll") epoll_m = m
            if (lib == "libnetcore") mine = m
            else if (lib != "epoll" && (best == "" || (rate ? m > best : m < best))) best = m
        }
        if (mine == "" || best == "" || mine == 0 || best == 0) printf " %22s", "-"
        else printf " %22.2f", rate ? best / mine : mine / best
        if ("epoll" in libseen) {
            if (mine == "" || epoll_m == "" || mine == 0 || epoll_m == 0) printf " %16s", "-"
            else printf " %16.2f", rate ? epoll_m / mine : mine / epoll_m
        }
        printf "\n"
    }
    printf "(median of %d runs each)\n", '"$runs"'
}' "$results"
