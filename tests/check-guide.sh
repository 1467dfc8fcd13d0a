#!/usr/bin/env bash
# docs/guide.md cannot rot: its code is compiled and its programs run.
#   1. every ```c block is marked (the guide's "About the code" says how):
#      "<!-- file: NAME.c -->" blocks are joined into NAME.c, in order;
#      "<!-- excerpt: NAME.c -->" blocks must appear verbatim in NAME.c;
#   2. make install into a temporary prefix; each NAME.c compiles with
#      -Wall -Wextra -Werror and $(pkg-config --cflags --libs libnetcore)
#      alone (linked when it has a main, else compiled with -c);
#   3. every "<!-- output -->" console block is run: each "$ COMMAND" line
#      runs in the directory of the built programs, and prints exactly the
#      lines that follow it;
#   4. the tutorial runs on loopback: echo-server on 127.0.0.1 port 0,
#      echo-client gets its echo, the server logs the connection and its
#      close, netcore-doctor finds the server loopback-only and no socket in
#      CLOSE_WAIT, SIGTERM stops it (closing a connection still open) with
#      status 0; firehose moves its 64 MiB; reach warns about localhost.
# Every process is started here, bounded by timeout, and ended by its PID.
#
# usage: tests/check-guide.sh [GUIDE]   (make check runs it; default
#        docs/guide.md)
# environment: NC_BUILD (build root), NC_CC (compiler), NC_MAKE (make)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
guide=${1:-$root/docs/guide.md}
build=${NC_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
cc=${NC_CC:-${CC:-cc}}
make=${NC_MAKE:-make}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-guide.XXXXXX")
spid=
cleanup() {
    # The server runs under timeout, which passes SIGTERM on and ends it
    # with SIGKILL 5 s later: the wait is bounded.
    if [ -n "$spid" ]; then
        kill -TERM "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix
src=$tmp/src       # the programs as extracted from the guide
work=$tmp/work     # where they are built and run
mkdir -p "$src" "$work" "$tmp/excerpts" "$tmp/outputs"
failures=0

say() { printf 'check-guide: %s\n' "$*"; }
fail() {
    say "FAILED: $*"
    failures=$((failures + 1))
}
die() {
    say "FAILED: $*"
    exit 1
}

[ -f "$guide" ] || die "$guide does not exist"
command -v pkg-config >/dev/null 2>&1 || die "pkg-config is not installed (make deps)"

# --- 1. extract --------------------------------------------------------------
# A marker must be the line right before its block's opening fence.
if ! awk -v src="$src" -v ex="$tmp/excerpts" -v out="$tmp/outputs" '
    function bad(msg) { printf "  %s:%d: %s\n", FILENAME, FNR, msg; errors++ }
    in_block {
        if ($0 ~ /^ *```$/) { in_block = 0; if (dest != "") close(dest); next }
        line = $0
        if (substr(line, 1, length(indent)) == indent)
            line = substr(line, length(indent) + 1)
        if (dest != "") print line >> dest
        next
    }
    /^ *<!-- (file|excerpt): [A-Za-z0-9_.-]+\.c -->$/ {
        pending = $0 ~ /<!-- file:/ ? "file" : "excerpt"
        pending_name = $0
        sub(/^ *<!-- [a-z]+: /, "", pending_name)
        sub(/ -->$/, "", pending_name)
        next
    }
    /^ *<!-- output -->$/ { pending = "output"; next }
    /^ *```/ {
        fence = $0
        sub(/^ */, "", fence)
        indent = substr($0, 1, length($0) - length(fence))
        lang = substr(fence, 4)
        dest = ""
        if (lang == "c" && pending == "file") {
            dest = src "/" pending_name
            if (seen[pending_name]++) print "" >> dest
        } else if (lang == "c" && pending == "excerpt") {
            dest = sprintf("%s/%03d.%s", ex, ++n_ex, pending_name)
            printf "" > dest
        } else if (lang == "c") {
            bad("a ```c block without <!-- file: NAME.c --> or <!-- excerpt: NAME.c --> right before it")
        } else if (pending == "output" && lang == "console") {
            dest = sprintf("%s/%03d.txt", out, ++n_out)
            printf "" > dest
        } else if (pending != "") {
            bad("this block does not fit the marker right before it")
        }
        pending = ""
        in_block = 1
        next
    }
    pending != "" && $0 != "" { bad("a marker not followed by its block"); pending = "" }
    END {
        if (in_block) bad("a code block is not closed")
        exit errors > 0
    }' "$guide" >"$tmp/extract.log" 2>&1; then
    cat "$tmp/extract.log"
    die "docs/guide.md: code blocks are not marked as its \"About the code\" says"
fi
programs=()
for f in "$src"/*.c; do
    [ -f "$f" ] && programs+=("$(basename "$f" .c)")
done
[ ${#programs[@]} -gt 0 ] || die "docs/guide.md has no <!-- file: NAME.c --> block"
say "${#programs[@]} programs extracted: ${programs[*]}"

excerpts=0
for ex in "$tmp/excerpts"/*.c; do
    [ -f "$ex" ] || continue
    excerpts=$((excerpts + 1))
    name=${ex##*/}
    name=${name#*.}
    if [ ! -f "$src/$name" ]; then
        fail "an excerpt quotes $name, which the guide does not define"
        continue
    fi
    whole=$(cat "$src/$name")
    quote=$(cat "$ex")
    if [[ "$whole" != *"$quote"* ]]; then
        sed 's/^/  | /' "$ex"
        fail "this excerpt is not in $name as the guide defines it"
    fi
done
say "$excerpts excerpts checked against the programs they quote"

# --- 2. install and compile -----------------------------------------------------
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -E 's/--jobserver-(auth|fds)=[^ ]*//g')
export MAKEFLAGS
if ! "$make" -C "$root" --no-print-directory BUILD="$build" PREFIX="$prefix" \
    LDCONFIG=: install >"$tmp/install.log" 2>&1; then
    sed 's/^/  /' "$tmp/install.log"
    die "make install PREFIX=$prefix failed"
fi
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists libnetcore || die "pkg-config does not find libnetcore in $PKG_CONFIG_PATH"
read -r -a cflags <<<"$(pkg-config --cflags libnetcore)"
read -r -a libs <<<"$(pkg-config --libs libnetcore)"
declare -A built=()
for p in "${programs[@]}"; do
    cp "$src/$p.c" "$work/"
    if grep -qE '^int main\(' "$work/$p.c"; then
        cmd=("$cc" -Wall -Wextra -Werror -o "$p" "$p.c" "${cflags[@]}" "${libs[@]}")
        what="built"
    else
        cmd=("$cc" -Wall -Wextra -Werror -c -o "$p.o" "$p.c" "${cflags[@]}")
        what="compiled (no main)"
    fi
    if ! (cd "$work" && "${cmd[@]}") >"$tmp/cc.log" 2>&1; then
        sed 's/^/  /' "$tmp/cc.log"
        fail "$p.c from docs/guide.md does not compile against the installed library"
        continue
    fi
    [ "$what" = built ] && built[$p]=1
    say "$p.c: $what with pkg-config"
done
export LD_LIBRARY_PATH=$prefix/lib

# --- 3. the outputs the guide shows -------------------------------------------------
# run_block FILE: run each "$ " command of FILE, compare with what follows.
run_block() {
    local file=$1 cmd="" expect="" line n=0
    local -a cmds=() expects=()
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line == '$ '* ]]; then
            [ -n "$cmd" ] && { cmds+=("$cmd"); expects+=("$expect"); }
            cmd=${line#\$ }
            expect=""
        else
            expect+="$line"$'\n'
        fi
    done <"$file"
    [ -n "$cmd" ] && { cmds+=("$cmd"); expects+=("$expect"); }
    for i in "${!cmds[@]}"; do
        cmd=${cmds[$i]}
        if [[ $cmd == *eth99* ]] && [ -e /sys/class/net/eth99 ]; then
            say "skipped, this host has an eth99: $cmd"
            continue
        fi
        got=$(cd "$work" && timeout --kill-after=5 10 bash -c "$cmd" 2>&1 </dev/null)
        if [ "$got"$'\n' != "${expects[$i]}" ]; then
            diff -u <(printf '%s' "${expects[$i]}") <(printf '%s\n' "$got") |
                tail -n +3 | sed 's/^/  /'
            fail "docs/guide.md shows other output for: \$ $cmd"
            continue
        fi
        n=$((n + 1))
    done
    ran=$((ran + n))
}
ran=0
for f in "$tmp/outputs"/*.txt; do
    [ -f "$f" ] && run_block "$f"
done
say "$ran commands print what docs/guide.md shows"

# --- 4. the tutorial, on loopback --------------------------------------------------
need() {
    [ -n "${built[$1]:-}" ] && return 0
    fail "docs/guide.md has no program $1.c with a main (the tutorial needs it)"
    return 1
}
# expect_line PATTERN WHAT: the server's next line matches PATTERN.
expect_line() {
    local line
    if ! IFS= read -r -t 10 -u 3 line; then
        fail "echo-server did not print $2 within 10 s"
        return 1
    fi
    if [[ ! $line =~ $1 ]]; then
        fail "echo-server printed '$line', not $2"
        return 1
    fi
    last_line=$line
}

tutorial() {
    local port out rc doctor=$build/bin/netcore-doctor
    mkfifo "$tmp/server.out" || return
    (cd "$work" && exec timeout --kill-after=5 60 ./echo-server 127.0.0.1:0) \
        >"$tmp/server.out" 2>&1 &
    spid=$!
    exec 3<"$tmp/server.out"
    expect_line '^listening on 127\.0\.0\.1:[0-9]+$' "'listening on 127.0.0.1:PORT'" || return
    port=${last_line##*:}
    out=$(cd "$work" && timeout --kill-after=5 10 ./echo-client "127.0.0.1:$port" "hello, netcore" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] || [ "$out" != "hello, netcore" ]; then
        printf '%s\n' "$out" | sed 's/^/  | /'
        fail "echo-client 127.0.0.1:$port: status $rc, not 0 with the echo"
    else
        say "echo-client got its echo from echo-server on 127.0.0.1:$port"
    fi
    expect_line '^connection from 127\.0\.0\.1:[0-9]+$' "'connection from 127.0.0.1:PORT'" &&
        expect_line '^connection closed: peer closed$' "'connection closed: peer closed'" &&
        say "echo-server logged the connection and its close"
    if [ -x "$doctor" ]; then
        out=$("$doctor" port "$port" 2>&1)
        if [[ $out == *"LOOPBACK ONLY"* && $out == *"CLOSE_WAIT: none"* ]]; then
            say "netcore-doctor port $port: loopback only, CLOSE_WAIT: none"
        else
            printf '%s\n' "$out" | sed 's/^/  | /'
            fail "netcore-doctor port $port does not say LOOPBACK ONLY and CLOSE_WAIT: none"
        fi
    else
        fail "$doctor was not built (make all builds it)"
    fi
    # A client still connected when the server stops is closed by it.
    if exec 4<>"/dev/tcp/127.0.0.1/$port"; then
        expect_line '^connection from ' "'connection from ...' for a second client"
        kill -TERM "$spid"
        expect_line '^connection closed: shutting down$' "'connection closed: shutting down'" &&
            expect_line '^stopped$' "'stopped'"
        exec 4<&-
    else
        fail "cannot connect to 127.0.0.1:$port with bash's /dev/tcp"
        kill -TERM "$spid"
    fi
    wait "$spid"
    rc=$?
    spid=
    exec 3<&-
    if [ "$rc" -ne 0 ]; then
        fail "echo-server exited with status $rc after SIGTERM"
    else
        say "echo-server stopped on SIGTERM with status 0"
    fi
}

if need echo-server && need echo-client; then
    tutorial
fi
if need firehose; then
    out=$(cd "$work" && timeout --kill-after=5 30 ./firehose 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [[ $out == *"client: received 64 MiB; closed: peer closed"* ]]; then
        say "firehose moved 64 MiB"
    else
        printf '%s\n' "$out" | sed 's/^/  | /'
        fail "firehose exited with status $rc"
    fi
fi
if need reach; then
    out=$(cd "$work" && timeout --kill-after=5 10 ./reach localhost:0 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [[ $out == *"only this host can connect"* ]]; then
        say "reach warns that localhost:0 is loopback only"
    else
        printf '%s\n' "$out" | sed 's/^/  | /'
        fail "reach localhost:0: status $rc, without the loopback warning"
    fi
fi

if [ "$failures" -gt 0 ]; then
    say "$failures problem(s)"
    exit 1
fi
say "ok"
