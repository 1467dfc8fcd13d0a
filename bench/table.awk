# bench/table.awk - the comparison table of bench/run.sh, bench/churn.sh,
# bench/callgrind.sh and bench/backends.sh.
#
# Usage: awk -v runs=N -f bench/table.awk RESULTS
# RESULTS holds lines "<group> <job> <library> <value> <unit>" (other
# lines are ignored). Prints one row per (group, job) with the median of
# every library's values, the ratio of libnetcore to the faster peer
# library (below 1.00: libnetcore is faster; for rates, units ending in
# "/s", higher is better and the ratio is inverted so that it always reads
# as libnetcore's relative cost) and, when a library "epoll" (the
# hand-written floor, not a peer) is present, libnetcore / epoll. A
# library named "nc-<something>" is libnetcore itself run another way
# (bench/backends.sh: nc-epoll is libnetcore on its epoll backend, while
# "libnetcore" runs on io_uring): it is not a peer either, and gets a
# column libnetcore / nc-<something> of its own. Values below 10 get two
# decimals.
NF == 5 && $4 ~ /^[0-9.]+$/ {
    key = $1 " " $2
    if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
    if (!(($3) in libseen)) {
        libseen[$3] = 1; libs[++nlibs] = $3
        if ($3 ~ /^nc-/) variants[++nvariants] = $3
    }
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
# libnetcore's relative cost against other: "-" when either is missing.
function ratio(mine, other, rate) {
    if (mine == "" || other == "" || mine == 0 || other == 0) return "-"
    return sprintf("%.2f", rate ? other / mine : mine / other)
}
END {
    if (nkeys == 0) { print "bench/table.awk: no result lines" > "/dev/stderr"; exit 1 }
    printf "%-28s %-9s", "job", "unit"
    for (l = 1; l <= nlibs; l++) printf " %12s", libs[l]
    printf " %22s", "libnetcore/faster peer"
    if ("epoll" in libseen) printf " %16s", "libnetcore/epoll"
    for (v = 1; v <= nvariants; v++) printf " %19s", "libnetcore/" variants[v]
    printf "\n"
    for (k = 1; k <= nkeys; k++) {
        key = order[k]
        rate = unit[key] ~ /\/s$/
        printf "%-28s %-9s", key, unit[key]
        best = ""; mine = ""; split("", med)
        for (l = 1; l <= nlibs; l++) {
            lib = libs[l]
            if (!((key, lib) in count)) { printf " %12s", "-"; continue }
            m = med[lib] = median(key, lib)
            printf(m < 10 ? " %12.2f" : " %12.1f", m)
            if (lib == "libnetcore") mine = m
            else if (lib != "epoll" && lib !~ /^nc-/ &&
                     (best == "" || (rate ? m > best : m < best))) best = m
        }
        printf " %22s", ratio(mine, best, rate)
        if ("epoll" in libseen) printf " %16s", ratio(mine, med["epoll"], rate)
        for (v = 1; v <= nvariants; v++)
            printf " %19s", ratio(mine, med[variants[v]], rate)
        printf "\n"
    }
    if (runs == 1) printf "(one run each)\n"
    else printf "(median of %d runs each)\n", runs
}