#!/usr/bin/env bash
# The libraries must not take names a program could use itself:
# - the shared library exports exactly the public API: every dynamic
#   symbol it defines is declared in include/netcore.h, and every function
#   the header declares is among them;
# - the static archive defines no global symbol outside the library's two
#   prefixes: nc_ for the public API and nc__ for functions shared between
#   the library's files (a program with its own timer_start must link).
# usage: tests/check-symbols.sh [BUILD_DIR]  (default: $NC_BUILD, or build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${NC_BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac
so=$build/lib/libnetcore.so
ar=$build/lib/libnetcore.a

for f in "$so" "$ar"; do
    if [ ! -e "$f" ]; then
        echo "check-symbols: $f does not exist; run make first" >&2
        exit 1
    fi
done

status=0
report() {   # report TITLE LIST
    if [ -n "$2" ]; then
        echo "check-symbols: $1"
        printf '%s\n' "$2" | sed 's/^/  /'
        status=1
    fi
}

# Function declarations in the header start at column 0 with a type and
# have the name right before "(": "const char *nc_strerror(int err);".
declared=$(grep -oE '^[A-Za-z_][A-Za-z0-9_ ]*[ *]+nc_[a-z0-9_]+\(' "$root/include/netcore.h" |
    grep -v '^typedef' | grep -oE 'nc_[a-z0-9_]+\($' | tr -d '(' | sort -u)

# Absolute (A) entries are symbol-version names, not code or data.
exported=$(nm -D --defined-only "$so" | awk 'NF >= 3 && $2 != "A" { print $3 }' | sort -u)
if [ -z "$exported" ]; then
    echo "check-symbols: $so exports no symbols at all"
    exit 1
fi
report "exported by $so but not declared in include/netcore.h (make them static, or give them the internal nc__ prefix: they are hidden):" \
    "$(comm -13 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported"))"
report "declared in include/netcore.h but not exported by $so:" \
    "$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported"))"

# Global (upper-case type) symbols the archive's objects define.
defined=$(nm --defined-only "$ar" | awk 'NF >= 3 && $2 ~ /^[A-Z]$/ { print $3 }' | sort -u)
report "defined globally in $ar without the nc_ or nc__ prefix (make them static or prefix them nc__):" \
    "$(printf '%s\n' "$defined" | grep -v '^nc_' || true)"
report "defined in $ar with the public nc_ prefix but not declared in include/netcore.h (internal ones take nc__):" \
    "$(comm -13 <(printf '%s\n' "$declared") <(printf '%s\n' "$defined" | grep '^nc_' | grep -v '^nc__'))"

if [ "$status" -eq 0 ]; then
    echo "check-symbols: $(printf '%s\n' "$exported" | wc -l) symbols exported, all declared;" \
         "$(printf '%s\n' "$defined" | grep -c '^nc__') internal nc__ symbols in the archive, nothing else global"
fi
exit "$status"
