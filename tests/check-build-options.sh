#!/usr/bin/env bash
# The build's optional parts, TLS (OpenSSL 3), URING (liburing) and CARES
# (c-ares), as make handles them:
#   1. a value other than auto, yes or no is refused, naming the variable
#      and the values it takes; make help lists both variables;
#   2. a build that leaves them out says so once, in one line each, with
#      the reason: switched off (TLS=no URING=no CARES=no), or not found
#      (here a pkg-config that finds none of them stands in for a machine
#      without them); a second make, with nothing to do, says nothing;
#   3. the TLS calls of such a library say the same reason in their
#      message (nc_tls_server_new's errbuf).
# The two libraries are built in a temporary directory.
# environment: NC_CC (compiler), NC_MAKE (make)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cc=${NC_CC:-${CC:-cc}}
make=${NC_MAKE:-make}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-options.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

say() { printf 'check-build-options: %s\n' "$*"; }
die() { say "FAILED: $*"; exit 1; }

# As in check-consumer.sh: the calling make's variables (CC, WERROR, ...)
# arrive in MAKEFLAGS, its jobserver descriptors must not.
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -E 's/--jobserver-(auth|fds)=[^ ]*//g')
export MAKEFLAGS

# --- 1. values --------------------------------------------------------------
for var in TLS URING CARES; do
    for value in maybe 'yes no' ''; do
        if "$make" -C "$root" --no-print-directory "$var=$value" help \
            >"$tmp/out" 2>&1; then
            die "make $var='$value' was accepted"
        fi
        grep -q "$var=$value is not a choice: use $var=auto .*$var=yes .*$var=no" "$tmp/out" ||
            die "make $var='$value' was refused without naming the choices: $(cat "$tmp/out")"
    done
done
"$make" -C "$root" --no-print-directory help >"$tmp/help"
grep -q '^  TLS=auto|yes|no ' "$tmp/help" || die "make help does not list TLS"
grep -q '^  URING=auto|yes|no ' "$tmp/help" || die "make help does not list URING"
grep -q '^  CARES=auto|yes|no ' "$tmp/help" || die "make help does not list CARES"
say "TLS, URING and CARES take auto, yes or no; make help lists them"

# --- 2. and 3. what a build leaves out --------------------------------------
# A pkg-config that finds none of OpenSSL, liburing and c-ares, and asks
# the real one for everything else.
real=$(command -v pkg-config) || die "pkg-config is not installed (make deps)"
cat >"$tmp/pkg-config" <<EOF
#!/bin/sh
case "\$*" in *openssl*|*liburing*|*libcares*) exit 1 ;; esac
exec '$real' "\$@"
EOF
chmod +x "$tmp/pkg-config"

cat >"$tmp/probe.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <netcore.h>

int main(void)
{
    nc_tls_options o = { .cert_file = "c.pem", .key_file = "k.pem" };
    nc_tls_ctx *ctx = NULL;
    char why[256] = "";
    int err = nc_tls_server_new(&o, &ctx, why, sizeof why);
    printf("%s: %s\n", err == -ENOTSUP ? "ENOTSUP" : nc_errname(err), why);
    return 0;
}
EOF

# check_build NAME TLS_REASON URING_REASON CARES_REASON LIBRARY_TEXT MAKE_ARGS...
check_build() {
    local name=$1 tls_why=$2 uring_why=$3 cares_why=$4 text=$5 lines out
    shift 5
    say "make $* lib"
    "$make" -C "$root" --no-print-directory BUILD="$tmp/$name" CC="$cc" "$@" lib \
        >"$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; die "the build failed"; }
    lines=$(grep '^make: built without' "$tmp/$name.log" || true)
    [ "$lines" = "make: built without TLS: $tls_why; the TLS calls return -ENOTSUP
make: built without io_uring: $uring_why; every loop runs on epoll
make: built without c-ares: $cares_why; names are looked up with getaddrinfo on helper threads" ] ||
        die "make said, about what it left out: '$lines'"
    "$make" -C "$root" --no-print-directory BUILD="$tmp/$name" CC="$cc" "$@" lib \
        >"$tmp/$name.again" 2>&1 || die "the second make failed"
    ! grep -q '^make: built without' "$tmp/$name.again" ||
        die "a second make, with nothing to build, said it again"
    "$cc" -I"$root/include" -o "$tmp/probe-$name" "$tmp/probe.c" \
        "$tmp/$name/lib/libnetcore.a" -pthread || die "the probe did not build"
    out=$("$tmp/probe-$name")
    [ "$out" = "ENOTSUP: this libnetcore was built without TLS ($text)" ] ||
        die "nc_tls_server_new said: $out"
    say "$name: one line each for TLS, io_uring and c-ares; the TLS calls say: ($text)"
}

check_build off 'switched off (TLS=no)' 'switched off (URING=no)' \
    'switched off (CARES=no)' 'it was switched off: make TLS=no' TLS=no URING=no CARES=no
check_build missing 'pkg-config finds no OpenSSL 3 (apt-get install libssl-dev)' \
    'pkg-config finds no liburing (apt-get install liburing-dev)' \
    'pkg-config finds no c-ares (apt-get install libc-ares-dev)' \
    "OpenSSL's libssl-dev was not found" PKG_CONFIG="$tmp/pkg-config"
