#!/usr/bin/env bash
# tls-certs.sh DIR - the certificates the TLS tests and examples use, made
# fresh with the openssl command (ECDSA P-256, quick to make):
#   ca.pem ca.key              a test CA
#   server.pem server.key      for localhost, 127.0.0.1 and ::1, by the CA
#   expired.pem expired.key    the same names, expired yesterday
#   wrongname.pem wrongname.key  for wrong.example only
#   alt.pem alt.key            for alt.example (SNI)
#   client.pem client.key      a client certificate, by the CA
#   other-ca.pem other-ca.key  another CA, that nobody trusts
#   untrusted.pem untrusted.key  for localhost, by the other CA
# Exits non-zero with openssl's message if anything fails.
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$1.key" 2>/dev/null; }

ca() {   # ca NAME CN
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -subj "/CN=$2" \
        -days 3650 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() {   # leaf NAME CN SAN DAYS CA [USAGE]
    key "$1"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$3" \
        "${6:-serverAuth}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$5.pem" -CAkey "$5.key" \
        -CAcreateserial -out "$1.pem" -days "$4" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

here='DNS:localhost,IP:127.0.0.1,IP:::1'
ca ca "libnetcore test CA"
ca other-ca "someone else's CA"
leaf server localhost "$here" 3650 ca
leaf expired localhost "$here" -1 ca
leaf wrongname wrong.example DNS:wrong.example 3650 ca
leaf alt alt.example DNS:alt.example 3650 ca
leaf client client DNS:client 3650 ca clientAuth
leaf untrusted localhost "$here" 3650 other-ca
