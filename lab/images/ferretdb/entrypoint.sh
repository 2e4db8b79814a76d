#!/usr/bin/env bash
# FerretDB in place of mongod (lab stand-in, see the Dockerfile). `mongod`
# and its flags are accepted and ignored; anything else is run as given.
set -euo pipefail
if [ "${1:-mongod}" = mongod ]; then
  echo "parrotpark lab: FerretDB $(ferretdb --version | sed -n 's/^version: //p') (SQLite backend) stands in for mongod; ignored flags: ${*:2}" >&2
  exec ferretdb \
    --listen-addr=:27017 \
    --handler=sqlite \
    --sqlite-url=file:/data/db/ \
    --state-dir=/data/state \
    --telemetry=disable \
    --debug-addr=- \
    --log-level=warn
fi
exec "$@"
