#!/bin/sh
# The lab's S3 server: make the buckets LAB_S3_BUCKETS names (folders of the
# POSIX backend), then run versitygw on :7070 with /health.
set -eu
: "${ROOT_ACCESS_KEY_ID:?the root access key (ROOT_ACCESS_KEY_ID) must be set}"
: "${ROOT_SECRET_ACCESS_KEY:?the root secret key (ROOT_SECRET_ACCESS_KEY) must be set}"
for bucket in ${LAB_S3_BUCKETS:-}; do
    mkdir -p "/data/$bucket"
done
exec /usr/local/bin/versitygw --port :7070 --health /health --region "${LAB_S3_REGION:-fr-par}" posix /data
