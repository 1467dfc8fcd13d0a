# bench/table.awk - the comparison table of bench/run.sh, bench/churn.sh
# and bench/callgrind.sh.
#
# Usage: awk -v runs=N -f bench/table.awk RESULTS
# RESULTS holds lines "<group> <job> <library> <value> <unit>" (other
# lines are ignored). Prints one row per (group, job) with the median of
# every library's values, the ratio of libnetcore to the faster peer
# library (below 1.00: libnetcore is faster; for rates, units ending in
# "/s", higher is better and the ratio is inverted so that it always reads
# as libnetcore's relative cost) and, when a library "epoll" (the
# hand-written floor, not a peer) is present, libnetcore / epoll. Values
# below 10 get two decimals.
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
    if (nkeys == 0) { print "bench/table.awk: no result lines" > "/dev/stderr"; exit 1 }
    printf "%-28s %-9s", "job", "unit"
    for (l = 1; l <= nlibs; l++) printf " %12s", libs[l]
    printf " %22s", "libnetcore/faster peer"
    if ("epoll" in libseen) printf " %16s", "libnetcore/epoll"
    printf "\n"
    for (k = 1; k <= nkeys; k++) {
        key = order[k]
        rate = unit[key] ~ /\/s$/
        printf "%-28s %-9s", key, unit[key]
        best = ""; mine = ""; epoll_m = ""
        for (l = 1; l <= nlibs; l++) {
            lib = libs[l]
            if (!((key, lib) in count)) { printf " %12s", "-"; continue }
            m = median(key, lib)
            printf(m < 10 ? " %12.2f" : " %12.1f", m)
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
    if (runs == 1) printf "(one run each)\n"
    else printf "(median of %d runs each)\n", runs
}