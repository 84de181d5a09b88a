#!/usr/bin/env bash
# Builds the chaincode-as-a-service package for `peer lifecycle chaincode install`:
#
#   custodia.tar.gz
#   ├── metadata.json        {"type":"ccaas","label":...}
#   └── code.tar.gz
#       └── connection.json  where the peer dials the chaincode service
#
# connection.json's ${CHAINCODE_HOST} and ${CHAINCODE_PORT} are filled from the environment
# (defaults: custodia-chaincode, 9999); LABEL overrides the label (default from metadata.json).
# Usage: chaincode/ccaas/package.sh [output.tar.gz]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$PWD/custodia.tar.gz}"
host="${CHAINCODE_HOST:-custodia-chaincode}"
port="${CHAINCODE_PORT:-9999}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sed -e "s|\${CHAINCODE_HOST}|${host}|g" -e "s|\${CHAINCODE_PORT}|${port}|g" "$here/connection.json" > "$work/connection.json"
if [ -n "${LABEL:-}" ]; then
  sed -e "s|\"label\": \"[^\"]*\"|\"label\": \"${LABEL}\"|" "$here/metadata.json" > "$work/metadata.json"
else
  cp "$here/metadata.json" "$work/metadata.json"
fi
tar -C "$work" -czf "$work/code.tar.gz" connection.json
tar -C "$work" -czf "$out" metadata.json code.tar.gz
echo "$out"
