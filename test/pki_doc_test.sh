#!/usr/bin/env bash
# Runs the private-network commands of docs/OPERATIONS.md exactly as written
# there (between the PKI-BEGIN and PKI-END markers), then checks that both
# TLS backends accept the certificates they produce.
set -euo pipefail
meshmap=$(realpath "$1") check=$(realpath "$2") doc=$(realpath "$3")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
sed -n '/<!-- PKI-BEGIN -->/,/<!-- PKI-END -->/p' "$doc" |
  sed -n '/^```sh$/,/^```$/p' | grep -v '^```' > commands.sh
[ -s commands.sh ] || { echo "no commands found in $doc"; exit 1; }
export PATH="$(dirname "$meshmap"):$PATH"
bash -euo pipefail commands.sh
id=$(cat node.id)
cn=$(openssl x509 -in node.crt -noout -subject | sed 's/.*CN *= *//')
[ "$cn" = "$id" ] || { echo "CN $cn is not the peer id $id"; exit 1; }
"$check" ca.crt node.crt node-tls.key
