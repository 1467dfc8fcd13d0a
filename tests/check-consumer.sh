#!/usr/bin/env bash
# Install libnetcore into a temporary prefix and build tests/consumer/consumer.c
# the way another project would, with nothing but pkg-config's flags: once
# against the shared library and once statically. Both must run and print
# "consumer ok".
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

say "make install PREFIX=$prefix"
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    LDCONFIG=: install >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    die "make install failed"
fi
libdir=$prefix/lib
for f in include/netcore.h lib/libnetcore.a lib/libnetcore.so lib/libnetcore.so.0 \
    lib/pkgconfig/libnetcore.pc; do
    [ -e "$prefix/$f" ] || die "make install did not create $f"
done

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

# Static: the private libraries, with libnetcore's archive forced over the
# .so that sits beside it.
slibs=$(pkg-config --static --libs libnetcore)
forced=
for word in $slibs; do
    if [ "$word" = -lnetcore ]; then
        forced="$forced -Wl,-Bstatic -lnetcore -Wl,-Bdynamic"
    else
        forced="$forced $word"
    fi
done
say "static: $cc consumer.c $cflags$forced"
# shellcheck disable=SC2086
"$cc" -Wall -Wextra -Werror -o consumer-static consumer.c $cflags $forced ||
    die "the static build did not compile"
if readelf -d consumer-static | grep -q 'NEEDED.*libnetcore'; then
    die "consumer-static still needs the shared libnetcore"
fi
if ldd consumer-static | grep -q libnetcore; then
    die "ldd shows libnetcore in consumer-static"
fi
out=$(env -u LD_LIBRARY_PATH timeout 20 ./consumer-static 2>&1) ||
    die "consumer-static failed: $out"
[ "$out" = "consumer ok" ] || die "consumer-static printed: $out"
say "static: $out"
