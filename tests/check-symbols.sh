#!/usr/bin/env bash
# The shared library must export the public API and nothing else: every
# dynamic symbol it defines starts with nc_, and every function
# include/netcore.h declares is among them.
# usage: tests/check-symbols.sh [path/to/libnetcore.so]  (default: $NC_BUILD/lib)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${NC_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
lib=${1:-$build/lib/libnetcore.so}

if [ ! -e "$lib" ]; then
    echo "check-symbols: $lib does not exist; run make first" >&2
    exit 1
fi

# Absolute (A) entries are symbol-version names, not code or data.
exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 != "A" { print $3 }' | sort -u)
if [ -z "$exported" ]; then
    echo "check-symbols: $lib exports no symbols at all"
    exit 1
fi
count=$(printf '%s\n' "$exported" | wc -l)

status=0
foreign=$(printf '%s\n' "$exported" | grep -v '^nc_' || true)
if [ -n "$foreign" ]; then
    echo "check-symbols: exported without the nc_ prefix (make them static or"
    echo "declare them in lib/internal.h, which is hidden):"
    printf '%s\n' "$foreign" | sed 's/^/  /'
    status=1
fi

# Function declarations in the header start at column 0 with a type and
# have the name right before "(": "const char *nc_strerror(int err);".
declared=$(grep -oE '^[A-Za-z_][A-Za-z0-9_ ]*[ *]+nc_[a-z0-9_]+\(' "$root/include/netcore.h" |
    grep -v '^typedef' | grep -oE 'nc_[a-z0-9_]+\($' | tr -d '(' | sort -u)
missing=$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported"))
if [ -n "$missing" ]; then
    echo "check-symbols: declared in include/netcore.h but not exported by $lib:"
    printf '%s\n' "$missing" | sed 's/^/  /'
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "check-symbols: $count symbols exported, all nc_, every declared function present"
fi
exit "$status"
