#!/usr/bin/env bash
# demo.sh - what `make demo` runs (after building): echo-server on all
# addresses (so other hosts could reach it through the primary interface),
# echo-client against it over loopback, netcore-doctor's view of the port,
# then SIGTERM and the server's summary.
#
# The client talks to 127.0.0.1 only: this demo never sends traffic to an
# address other than loopback, even the machine's own LAN address.
#
# Builds nothing. Finishes by itself within a few seconds; exits non-zero
# if any step failed. Ends only the server it started.
set -u

bin=${NC_BIN:-build/bin}
tmp=$(mktemp -d) || exit 1
server_pid=

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

step() {
    printf '\n== %s\n' "$*"
}

fail() {
    printf 'demo: FAILED: %s\n' "$*" >&2
    if [ -s "$tmp/server.err" ]; then
        printf 'demo: the server said on stderr:\n' >&2
        cat "$tmp/server.err" >&2
    fi
    exit 1
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
    local tries=$(( $1 * 10 ))
    shift
    while ! "$@"; do
        tries=$(( tries - 1 ))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
    done
}

for prog in echo-server echo-client netcore-doctor; do
    [ -x "$bin/$prog" ] || fail "$bin/$prog is missing (run: make demo)"
done

step "netcore-doctor ifaces: which interfaces could other hosts reach?"
"$bin/netcore-doctor" ifaces | tee "$tmp/ifaces" ||
    fail "netcore-doctor ifaces"
addr=$(awk '$1 == "primary:" && $2 != "none" { print $3; exit }' "$tmp/ifaces")
listen='*:0'

step "echo-server --listen $listen --idle-timeout 10   (port 0: the kernel picks)"
"$bin/echo-server" --listen "$listen" --idle-timeout 10 \
    >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
listening() {
    grep -q '^listening on ' "$tmp/server.out" ||
        { ! kill -0 "$server_pid" 2>/dev/null && return 0; }
}
wait_for 5 listening || fail "no 'listening on' line within 5 s"
grep -q '^listening on ' "$tmp/server.out" || fail "echo-server exited early"
cat "$tmp/server.out"
[ -s "$tmp/server.err" ] && cat "$tmp/server.err"
bound=$(awk '/^listening on / { print $3; exit }' "$tmp/server.out")
port=${bound##*:}
target=127.0.0.1:$port
if [ -n "$addr" ]; then
    echo "demo: other hosts would connect to $addr:$port; this demo talks" \
         "over loopback only"
else
    echo "demo: this host has no interface other hosts can reach"
fi

step "echo-client $target --message 'hello, netcore'"
reply=$("$bin/echo-client" "$target" --message 'hello, netcore') ||
    fail "echo-client could not talk to $target"
echo "$reply"
[ "$reply" = 'hello, netcore' ] || fail "the echo was '$reply'"

step "echo-client $target --count 2000 --connections 4   (a small load)"
"$bin/echo-client" "$target" --count 2000 --connections 4 ||
    fail "echo-client load run"

step "netcore-doctor port $port"
"$bin/netcore-doctor" port "$port" | tee "$tmp/doctor" ||
    fail "netcore-doctor port $port"
grep -q '^CLOSE_WAIT: none' "$tmp/doctor" ||
    fail "sockets left in CLOSE_WAIT on port $port"

step "netcore-doctor connect $target"
"$bin/netcore-doctor" connect "$target" || fail "netcore-doctor connect"

step "kill -TERM $server_pid   (echo-server closes everything and sums up)"
kill -TERM "$server_pid"
stopped() { ! kill -0 "$server_pid" 2>/dev/null; }
wait_for 5 stopped || fail "echo-server still runs 5 s after SIGTERM"
wait "$server_pid"
status=$?
server_pid=
grep -v '^listening on ' "$tmp/server.out"
[ "$status" -eq 0 ] || fail "echo-server exited with status $status"
grep -q '^echo-server: served ' "$tmp/server.out" || fail "no summary line"

printf '\ndemo: all steps passed\n'
