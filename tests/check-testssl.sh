#!/usr/bin/env bash
# The TLS defaults of a server made by nc_tls_server_new, as testssl.sh
# (Debian's testssl.sh package, the command testssl) judges them: it runs
# against http-hello with TLS on a loopback port of its own, and no line
# of its report may say "NOT ok" or "VULNERABLE". Also checked by name:
# no CBC suite offered, and the server's own cipher order.
#
# Skips (exit 77) when testssl is not installed (make deps installs it)
# or when the library was built without TLS. testssl runs the checks of
# its default run that judge the TLS layer: protocols, cipher categories,
# forward secrecy, server preference, server defaults and
# vulnerabilities; not the long listings (-e every cipher, -c client
# simulation) nor the HTTP headers (http-hello's, not the library's).
# It is bounded by NC_TESTSSL_TIMEOUT seconds (default 480): testssl is
# a large shell script, a minute on an idle machine, several on a busy
# one.
#
# One line of the report is excused, because it is about the test
# certificates of tests/tls-certs.sh and not about the server: their CA
# publishes no revocation list or OCSP responder. The test CA is handed
# to testssl (--add-ca) so that the chain is judged as a client that
# trusts it would.
#
# environment: NC_BUILD (build root), NC_TESTSSL_TIMEOUT (seconds)
# run-tests: timeout 540
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${NC_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
limit=${NC_TESTSSL_TIMEOUT:-480}

say() { printf 'check-testssl: %s\n' "$*"; }
skip() { say "SKIP: $*"; exit 77; }
die() { say "FAILED: $*"; exit 1; }

command -v testssl >/dev/null 2>&1 ||
    skip "testssl.sh is not installed (as root: apt-get install testssl.sh; make deps does it)"
command -v openssl >/dev/null 2>&1 || skip "the openssl command is not installed"
hello=$build/bin/http-hello
[ -x "$hello" ] || die "$hello is not built (make)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nc-testssl.XXXXXX")
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

bash "$root/tests/tls-certs.sh" "$tmp/certs" || die "tests/tls-certs.sh failed"
timeout --kill-after=5 "$((limit + 60))" "$hello" --listen 127.0.0.1:0 \
    --tls-cert "$tmp/certs/server.pem" --tls-key "$tmp/certs/server.key" \
    >"$tmp/server.out" 2>"$tmp/server.err" &
spid=$!

# Its "listening on 127.0.0.1:PORT (lo; BACKEND, TLS)" line, within 10 s.
port=
for _ in $(seq 100); do
    port=$(sed -nE 's/^listening on 127\.0\.0\.1:([0-9]+) \(.*\)$/\1/p' "$tmp/server.out" | head -n 1)
    [ -n "$port" ] && break
    if ! kill -0 "$spid" 2>/dev/null; then
        if grep -q 'built without TLS' "$tmp/server.err"; then
            spid=
            skip "this libnetcore was built without TLS: $(cat "$tmp/server.err")"
        fi
        spid=
        die "http-hello did not start: $(cat "$tmp/server.err")"
    fi
    sleep 0.1
done
[ -n "$port" ] || die "http-hello printed no 'listening on' line in 10 s"
grep -q ', TLS)$' "$tmp/server.out" || die "http-hello does not serve TLS: $(cat "$tmp/server.out")"

say "testssl against http-hello on 127.0.0.1:$port (at most $limit s)"
start=$SECONDS
# --nodns none: loopback needs no DNS, and a sandbox may have none.
timeout --kill-after=10 "$limit" testssl --quiet --color 0 --warnings batch \
    --nodns none --openssl-timeout 10 --add-ca "$tmp/certs/ca.pem" \
    -p -s -f -P -S -U "127.0.0.1:$port" >"$tmp/report" 2>&1
rc=$?
say "testssl ran $((SECONDS - start)) s, exit status $rc"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || die "testssl did not finish in $limit s"
grep -q '^ Done ' "$tmp/report" || { sed 's/^/  | /' "$tmp/report"; die "testssl did not finish its report"; }

excused='NOT ok -- neither CRL nor OCSP URI provided'
bad=$(grep -E 'NOT ok|VULNERABLE' "$tmp/report" | grep -vF -- "$excused")
fails=0
if [ -n "$bad" ]; then
    printf '%s\n' "$bad" | sed 's/^/  | /'
    say "FAILED: testssl found the lines above"
    fails=1
fi
grep -qE '^ Obsolete CBC ciphers .* not offered' "$tmp/report" || {
    say "FAILED: CBC suites are offered"; fails=1; }
grep -qE '^ Has server cipher order\? +yes' "$tmp/report" || {
    say "FAILED: the server does not choose by its own cipher order"; fails=1; }
if [ "$fails" -ne 0 ]; then
    sed 's/^/  | /' "$tmp/report"
    exit 1
fi
say "no 'NOT ok' and no 'VULNERABLE' (the test CA's missing CRL/OCSP aside);" \
    "CBC not offered; the server's cipher order"
