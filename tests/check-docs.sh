#!/usr/bin/env bash
# The documentation generated from include/netcore.h must be complete,
# clean and current, and its examples must work:
#   1. every function, type and macro of the header has a comment in the
#      header's convention; every function returning int has "Returns:"
#      and "Errors:", every function a "Thread:" line, every section an
#      example (docs/gen-docs.awk -v mode=check);
#   2. make install into a temporary prefix installs exactly one man page
#      per function plus netcore.3 and libnetcore.3, and man finds them;
#   3. every generated page lints clean with groff -ww and man --warnings;
#   4. the committed docs/api.md is what the header generates now;
#   5. every docs/examples/*.c compiles with -Wall -Wextra -Werror and
#      links against the installed library through pkg-config alone, and
#      runs to exit status 0 within 20 s (they use loopback only);
#   6. make uninstall removes every file make install put there.
# Every failure names the function, page or example at fault.
#
# usage: tests/check-docs.sh   (make check runs it through run-tests.sh)
# environment: NC_BUILD (build root), NC_CC (compiler), NC_MAKE (make),
#              AWK (awk to run the generator with; default awk)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${NC_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
cc=${NC_CC:-${CC:-cc}}
make=${NC_MAKE:-make}
awk=${AWK:-awk}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
failures=0

say() { printf 'check-docs: %s\n' "$*"; }
fail() {
    say "FAILED: $*"
    failures=$((failures + 1))
}
die() {
    say "FAILED: $*"
    exit 1
}

for tool in groff man pkg-config; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool is not installed (make deps installs groff-base, man-db, pkg-config)"
done

# --- 1. the header's comments ----------------------------------------------
if ! "$awk" -v mode=check -v root="$root" -f "$root/docs/gen-docs.awk" \
    "$root/include/netcore.h" >"$tmp/convention.log" 2>&1; then
    sed 's/^/  /' "$tmp/convention.log"
    fail "include/netcore.h breaks its comment convention (see its second comment)"
else
    say "every declaration of include/netcore.h is documented"
fi

# --- 2. install ----------------------------------------------------------------
# As in check-consumer.sh: keep the calling make's variables, drop its
# jobserver.
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -E 's/--jobserver-(auth|fds)=[^ ]*//g')
export MAKEFLAGS
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    LDCONFIG=: install >"$tmp/install.log" 2>&1; then
    sed 's/^/  /' "$tmp/install.log"
    die "make install PREFIX=$prefix failed"
fi
mandir=$build/doc/man3
mapfile -t pages < <("$awk" -v mode=list -f "$root/docs/gen-docs.awk" "$root/include/netcore.h")
[ ${#pages[@]} -gt 2 ] || die "docs/gen-docs.awk lists no pages"
declare -A is_page=()
for p in "${pages[@]}"; do
    is_page[$p]=1
done
for p in "${pages[@]}"; do
    [ -f "$mandir/$p" ] || fail "$p was not generated in $mandir"
    [ -f "$prefix/share/man/man3/$p" ] || fail "make install did not install $p"
done
for f in "$mandir"/*.3; do
    p=${f##*/}
    [ -n "${is_page[$p]:-}" ] || fail "$mandir/$p is stale: no such function in the header"
done
for f in "$prefix/share/man/man3"/*; do
    p=${f##*/}
    [ -n "${is_page[$p]:-}" ] || fail "make install installed $p, which is not a generated page"
done
for topic in netcore libnetcore nc_listen; do
    man -M "$prefix/share/man" -w "$topic" >/dev/null 2>&1 ||
        fail "man -M PREFIX/share/man does not find $topic(3)"
done
say "${#pages[@]} man pages generated and installed"

# --- 3. lint -------------------------------------------------------------------
# From the directory above man3, so that ".so man3/netcore.3" resolves.
linted=0
for p in "${pages[@]}"; do
    f=$mandir/$p
    [ -f "$f" ] || continue
    before=$failures
    if [ "$(head -c 4 "$f")" = '.so ' ]; then
        target=$(sed -n '1s/^\.so //p' "$f")
        [ -f "$build/doc/$target" ] || fail "$p: .so target $target does not exist"
        [ "$(wc -l <"$f")" -eq 1 ] || fail "$p: a .so page must be that one line"
    fi
    out=$(cd "$build/doc" && groff -ww -man -z "man3/$p" 2>&1)
    [ -z "$out" ] || fail "$p: groff -ww -man warns:
$out"
    out=$(cd "$build/doc" && LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
        man --warnings -E UTF-8 -l -Tutf8 -Z "man3/$p" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "$p: man --warnings warns:
$out"
    [ "$failures" -eq "$before" ] && linted=$((linted + 1))
done
say "$linted of ${#pages[@]} pages lint clean (groff -ww -man, man --warnings)"

# --- 4. docs/api.md ------------------------------------------------------------
if cmp -s "$root/docs/api.md" "$build/doc/api.md"; then
    say "docs/api.md matches include/netcore.h"
else
    diff -u "$root/docs/api.md" "$build/doc/api.md" | head -n 40 | sed 's/^/  /'
    fail "docs/api.md is out of date with include/netcore.h: run make api-md and commit it"
fi

# --- 5. the examples -------------------------------------------------------------
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists libnetcore || die "pkg-config does not find libnetcore in $PKG_CONFIG_PATH"
read -r -a cflags <<<"$(pkg-config --cflags libnetcore)"
read -r -a libs <<<"$(pkg-config --libs libnetcore)"
mkdir "$tmp/examples"
# The TLS example runs next to the certificates it needs.
if command -v openssl >/dev/null 2>&1; then
    bash "$root/tests/tls-certs.sh" "$tmp/examples" >/dev/null ||
        fail "tests/tls-certs.sh could not make certificates"
fi
examples=("$root"/docs/examples/*.c)
[ -f "${examples[0]}" ] || die "docs/examples/ has no programs"
for src in "${examples[@]}"; do
    name=$(basename "$src" .c)
    grep -q "^ \* Example: docs/examples/$name\.c$" "$root/include/netcore.h" ||
        fail "docs/examples/$name.c: no section of include/netcore.h names it"
    # A copy outside the tree: only pkg-config's flags can find netcore.h.
    cp "$src" "$tmp/examples/"
    if ! (cd "$tmp/examples" && "$cc" -Wall -Wextra -Werror -o "$name" "$name.c" \
        "${cflags[@]}" "${libs[@]}") >"$tmp/cc.log" 2>&1; then
        sed 's/^/  /' "$tmp/cc.log"
        fail "docs/examples/$name.c does not compile against the installed library"
        continue
    fi
    (cd "$tmp/examples" && LD_LIBRARY_PATH=$prefix/lib \
        timeout --kill-after=5 20 "./$name") >"$tmp/run.log" 2>&1 </dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        awk '{ print "  | " $0 }' "$tmp/run.log"
        if [ "$rc" -eq 124 ]; then
            fail "docs/examples/$name.c timed out after 20 s"
        else
            fail "docs/examples/$name.c exited with status $rc"
        fi
        continue
    fi
    say "docs/examples/$name.c: built with pkg-config, ran ok"
done

# --- 6. uninstall --------------------------------------------------------------
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    uninstall >"$tmp/uninstall.log" 2>&1; then
    sed 's/^/  /' "$tmp/uninstall.log"
    fail "make uninstall failed"
fi
# (PREFIX itself goes too when install created it and nothing else is in it.)
left=$([ ! -d "$prefix" ] || { cd "$prefix" && find . ! -type d | sort; })
if [ -n "$left" ]; then
    printf '%s\n' "$left" | sed 's/^/  /'
    fail "make uninstall left these files in PREFIX"
else
    say "make uninstall removed every installed file"
fi

if [ "$failures" -gt 0 ]; then
    say "$failures problem(s)"
    exit 1
fi
say "ok"
