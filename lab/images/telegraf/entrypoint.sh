#!/usr/bin/env bash
# Entrypoint of the lab telegraf image, with the official image's behaviour:
# - arguments that start with '-' are options of telegraf;
# - run as a non-root user: the command runs as it is;
# - run as root: telegraf may send ICMP and bind low ports (file
#   capabilities, where the storage driver allows them), and the command
#   runs as user telegraf, with the supplementary groups the container was
#   given (`docker run --group-add`, such as the docker socket's group),
#   without root.
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- telegraf "$@"
fi

if [ "$(id -u)" != "0" ]; then
    exec "$@"
fi

setcap cap_net_raw,cap_net_bind_service+ep /usr/bin/telegraf 2>/dev/null \
    || echo "entrypoint: could not set capabilities on /usr/bin/telegraf (ping and ports below 1024 unavailable)" >&2

HOME="$(getent passwd telegraf | cut -d: -f6)"
export HOME

groups="telegraf"
for gid in $(id -G); do
    name="$(getent group "$gid" | cut -d: -f1 || true)"
    case "${name:-$gid}" in
        root | telegraf) ;;
        *) groups="$groups,$gid" ;;
    esac
done

exec setpriv --reuid telegraf --regid telegraf --groups "$groups" "$@"
