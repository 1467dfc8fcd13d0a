#!/usr/bin/env bash
# Install libnetcore into a temporary prefix and build tests/consumer/consumer.c
# the way another project would, with nothing but pkg-config's flags:
# against the shared library, then with each command of README.md's
# pkg-config block exactly as written there (the shared line and the
# static one). Each program must run and print "consumer ok". The
# installed netcore-doctor must run from the prefix; make uninstall must
# remove every file, and the directories install created when they are
# empty, but no directory that was there before nor one still in use.
# environment: NC_BUILD (build root), NC_CC (compiler), NC_MAKE (make)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${NC_BUILD:-build}
cc=${NC_CC:-${CC:-cc}}
make=${NC_MAKE:-make}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

say() { printf 'check-consumer: %s\n' "$*"; }
die() { say "FAILED: $*"; exit 1; }

# Command-line variables of the calling make (CC, WERROR, ...) arrive in
# MAKEFLAGS and keep the build flags identical, so nothing is rebuilt; its
# jobserver descriptors do not, and are dropped.
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -E 's/--jobserver-(auth|fds)=[^ ]*//g')
export MAKEFLAGS

# An empty directory that exists before: uninstall must leave it.
mkdir -p "$prefix/share/man"
say "make install PREFIX=$prefix"
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    LDCONFIG=: install >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    die "make install failed"
fi
libdir=$prefix/lib
for f in include/netcore.h lib/libnetcore.a lib/libnetcore.so lib/libnetcore.so.0 \
    lib/pkgconfig/libnetcore.pc bin/netcore-doctor; do
    [ -e "$prefix/$f" ] || die "make install did not create $f"
done
# The error texts send users to netcore-doctor: it runs from the prefix,
# on the library installed beside it.
out=$(env -u LD_LIBRARY_PATH timeout 20 "$prefix/bin/netcore-doctor" --version 2>&1) ||
    die "the installed netcore-doctor does not run: $out"
ldd "$prefix/bin/netcore-doctor" | grep -q "=> $prefix/bin/../lib/libnetcore.so.0 " ||
    die "the installed netcore-doctor does not use the installed library: $(ldd "$prefix/bin/netcore-doctor")"
say "installed: $out"

export PKG_CONFIG_PATH=$libdir/pkgconfig
pkg-config --exists libnetcore || die "pkg-config does not find libnetcore in $PKG_CONFIG_PATH"
# A copy outside the tree, so no include can resolve against the sources.
mkdir "$tmp/src"
cp "$root/tests/consumer/consumer.c" "$tmp/src/"
cd "$tmp/src"

cflags=$(pkg-config --cflags libnetcore)
libs=$(pkg-config --libs libnetcore)
say "shared: $cc consumer.c $cflags $libs"
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" -Wall -Wextra -Werror -o consumer-shared consumer.c $cflags $libs ||
    die "the shared build did not compile"
readelf -d consumer-shared | grep -q 'NEEDED.*\[libnetcore\.so\.0\]' ||
    die "consumer-shared does not need libnetcore.so.0"
out=$(LD_LIBRARY_PATH=$libdir timeout 20 ./consumer-shared 2>&1) ||
    die "consumer-shared failed: $out"
[ "$out" = "consumer ok" ] || die "consumer-shared printed: $out"
say "shared: $out"

# README.md's block, each command as written: cc, app.c, ./app.
commands=$(awk '/<!-- tests\/check-consumer.sh runs each command of the next block -->/ { armed = 1; next }
    armed && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { if (sub(/\\$/, "")) { cmd = cmd $0; next } print cmd $0; cmd = "" }' "$root/README.md")
[ "$(printf '%s\n' "$commands" | grep -c '^cc ')" = 2 ] ||
    die "README.md: no block of two cc commands after the check-consumer marker: $commands"
printf '%s\n' "$commands" | grep -q -- '--static' ||
    die "README.md: no static link line (pkg-config --static) in the block"
cp consumer.c app.c
while IFS= read -r cmd; do
    rm -f app
    say "README: $cmd"
    bash -c "$cmd" || die "README.md's command did not build: $cmd"
    case $cmd in
    *--static*)
        if readelf -d app | grep -q 'NEEDED.*libnetcore'; then
            die "README.md's static line made a program that needs the shared libnetcore"
        fi
        out=$(env -u LD_LIBRARY_PATH timeout 20 ./app 2>&1) || die "./app failed: $out" ;;
    *)
        readelf -d app | grep -q 'NEEDED.*\[libnetcore\.so\.0\]' ||
            die "README.md's shared line made a program that does not need libnetcore.so.0"
        out=$(LD_LIBRARY_PATH=$libdir timeout 20 ./app 2>&1) || die "./app failed: $out" ;;
    esac
    [ "$out" = "consumer ok" ] || die "./app printed: $out"
    say "README: $out"
done <<<"$commands"

# A file of someone else's in a directory install created: it stays, and
# so does its directory.
touch "$libdir/someone-elses.txt"
say "make uninstall PREFIX=$prefix"
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    uninstall >"$tmp/uninstall.log" 2>&1; then
    cat "$tmp/uninstall.log"
    die "make uninstall failed"
fi
left=$(cd "$prefix" && find . | sort | tr '\n' ' ')
want='. ./lib ./lib/someone-elses.txt ./share ./share/man '
[ "$left" = "$want" ] ||
    die "after make uninstall PREFIX holds: $left (want: $want)"
say "uninstall: removed every file and the empty directories install made"
