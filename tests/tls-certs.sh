#!/bin/bash
# tls-certs.sh DIR: X.509 certificates for the migration TLS tests, made
# with certtool (gnutls-bin), laid out as migrate_tls_x509_cert_dir
# directories under DIR:
#   good/       CA 1; server-cert.pem for localhost and 127.0.0.1; client-cert.pem
#   other/      CA 2, an unrelated CA, and its own server and client certificates
#   badclient/  CA 1, so the server is trusted, but client-cert.pem from CA 2
#   wronghost/  CA 1; server-cert.pem for wrong.example and 192.0.2.1 only
#   expired/    CA 1; server-cert.pem valid in 2020 only
#   revoked/    CA 1 with ca-crl.pem revoking this directory's server-cert.pem
#   noclient/   CA 1 and the server's files, no client certificate
#   caonly/     CA 1 only
# ECDSA P-256 keys: RSA key generation would cost seconds per key.
set -euo pipefail

out=${1:?usage: tls-certs.sh DIR}
command -v certtool >/dev/null || {
    echo "tls-certs.sh: certtool not found: install gnutls-bin (tools/install-deps.sh does)" >&2
    exit 1
}
mkdir -p "$out"
cd "$out"
mkdir -p work
serial=1

# certtool talks on stderr; shown only when it fails
ct() {
    certtool "$@" 2>work/certtool.log >/dev/null || {
        echo "tls-certs.sh: certtool $* failed:" >&2
        cat work/certtool.log >&2
        exit 1
    }
}

key() {
    ct --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$1"
}

# ca NAME CN
ca() {
    key "work/$1-key.pem"
    printf 'cn = "%s"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 3650\nserial = %d\n' \
        "$2" "$serial" >"work/$1.tmpl"
    serial=$((serial + 1))
    ct --generate-self-signed --load-privkey "work/$1-key.pem" \
        --template "work/$1.tmpl" --outfile "work/$1-cert.pem"
}

# leaf NAME CA KIND(server|client) CN [TEMPLATE LINES...]
leaf() {
    local name=$1 ca=$2 kind=$3 cn=$4
    shift 4
    key "work/$name-key.pem"
    {
        echo "cn = \"$cn\""
        echo "serial = $serial"
        echo "signing_key"
        if [ "$kind" = server ]; then echo "tls_www_server"; else echo "tls_www_client"; fi
        printf '%s\n' "$@"
    } >"work/$name.tmpl"
    serial=$((serial + 1))
    grep -q '_date' "work/$name.tmpl" || echo "expiration_days = 365" >>"work/$name.tmpl"
    ct --generate-certificate --load-privkey "work/$name-key.pem" \
        --load-ca-certificate "work/$ca-cert.pem" --load-ca-privkey "work/$ca-key.pem" \
        --template "work/$name.tmpl" --outfile "work/$name-cert.pem"
}

# dir NAME CA SERVER CLIENT: a migrate_tls_x509_cert_dir ("-": none)
dir() {
    mkdir -p "$1"
    cp "work/$2-cert.pem" "$1/ca-cert.pem"
    if [ "$3" != - ]; then
        cp "work/$3-cert.pem" "$1/server-cert.pem"
        cp "work/$3-key.pem" "$1/server-key.pem"
    fi
    if [ "$4" != - ]; then
        cp "work/$4-cert.pem" "$1/client-cert.pem"
        cp "work/$4-key.pem" "$1/client-key.pem"
    fi
}

ca ca1 "dmaguard test CA"
ca ca2 "unrelated test CA"
leaf server1 ca1 server localhost 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' 'ip_address = "::1"'
leaf client1 ca1 client "migration source"
leaf server2 ca2 server localhost 'dns_name = "localhost"' 'ip_address = "127.0.0.1"'
leaf client2 ca2 client "migration source"
leaf wronghost ca1 server wrong.example 'dns_name = "wrong.example"' 'ip_address = "192.0.2.1"'
leaf expired ca1 server localhost 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
    'activation_date = "2020-01-01 00:00:00 UTC"' 'expiration_date = "2020-12-31 00:00:00 UTC"'
leaf revoked ca1 server localhost 'dns_name = "localhost"' 'ip_address = "127.0.0.1"'

dir good ca1 server1 client1
dir other ca2 server2 client2
dir badclient ca1 - client2
dir wronghost ca1 wronghost client1
dir expired ca1 expired client1
dir revoked ca1 revoked client1
dir noclient ca1 server1 -
dir caonly ca1 - -

printf 'expiration_days = 365\n' >work/crl.tmpl
ct --generate-crl --load-ca-privkey work/ca1-key.pem --load-ca-certificate work/ca1-cert.pem \
    --load-certificate work/revoked-cert.pem --template work/crl.tmpl \
    --outfile revoked/ca-crl.pem
rm -rf work
