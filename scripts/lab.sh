#!/usr/bin/env bash
# The lab: the whole system on this machine, without a cloud account.
#
#   scripts/lab.sh up               build images, start the lab, run site.yml
#   scripts/lab.sh site [args]      run site.yml against the lab again
#   scripts/lab.sh down             remove every container, volume and network the lab made,
#                                   but the registry's cache volume
#   scripts/lab.sh down --images    ... and the registry's cache volume and the lab's image tags
#
# PARROTPARK_LAB_LAYOUT=seeds (up, site) runs the seeds' layout instead of the
# default one: inventories/lab-seeds, with LiteLLM and LibreChat on the GPU
# server and an external MongoDB stand-in, parrotpark-lab-mongo (FerretDB).
#
# What runs, all on the docker network parrotpark-lab:
#   parrotpark-lab-registry   the lab registry (images built by lab/images)
#   parrotpark-lab-fakescw    the fake Scaleway API; each server it creates is
#                             a systemd container parrotpark-lab-srv-<id>
#   parrotpark-lab-entrance   the entrance server (systemd container) with
#                             Caddy's HTTPS published on 127.0.0.1
#   parrotpark-lab-mongo      (seeds' layout only) LibreChat's external database
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PP_ROOT"
pp_extra_ca

ENTRANCE=parrotpark-lab-entrance
NETWORK=parrotpark-lab
ENTRANCE_VOLUME=$ENTRANCE-docker
FAKESCW=parrotpark-lab-fakescw
HTTPS_PORT=${PARROTPARK_LAB_HTTPS_PORT:-8443}
FAKESCW_PORT=${PARROTPARK_LAB_FAKESCW_PORT:-8383}
DOMAIN=lab.parrotpark.test
# The fake's account: the same values as inventories/lab/group_vars/all/main.yml.
SCW_SECRET=11111111-2222-4333-8444-555555555555
SCW_PROJECT=0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e
MONGO=parrotpark-lab-mongo
MONGO_VOLUME=$MONGO-data
LAYOUT=${PARROTPARK_LAB_LAYOUT:-default}
case $LAYOUT in
  default) INVENTORY=inventories/lab ;;
  seeds) INVENTORY=inventories/lab-seeds ;;
  *) pp_die "PARROTPARK_LAB_LAYOUT must be default or seeds (got '$LAYOUT')" ;;
esac

start_fakescw() {
  if docker container inspect "$FAKESCW" >/dev/null 2>&1; then
    docker container start "$FAKESCW" >/dev/null
  else
    pp_log "starting the fake Scaleway API $FAKESCW"
    docker run -d --name "$FAKESCW" --network "$NETWORK" --label parrotpark.lab=true \
      --restart unless-stopped -p "127.0.0.1:$FAKESCW_PORT:8383" \
      -v /var/run/docker.sock:/var/run/docker.sock -v "$PP_ROOT/lab:/opt/lab:ro" -e PYTHONPATH=/opt/lab \
      parrotpark/lab-fakescw:current python3 -m fakescw --host 0.0.0.0 --port 8383 \
      --backend docker --docker-network "$NETWORK" --docker-image parrotpark/lab-engine-trixie:current \
      --secret-key "$SCW_SECRET" --project-id "$SCW_PROJECT" --organization-id "$SCW_PROJECT" >/dev/null
  fi
  local deadline=$((SECONDS + 30))
  until curl -fsS "http://127.0.0.1:$FAKESCW_PORT/_fake/health" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { docker logs --tail 30 "$FAKESCW" >&2; pp_die "the fake Scaleway API did not answer within 30s"; }
    sleep 1
  done
}

# The seeds' layout's external MongoDB: FerretDB (the lab's MongoDB stand-in)
# on the lab network, where the GPU server reaches it by address.
start_mongo() {
  if docker container inspect "$MONGO" >/dev/null 2>&1; then
    docker container start "$MONGO" >/dev/null
  else
    pp_log "starting LibreChat's external database $MONGO (FerretDB)"
    docker run -d --name "$MONGO" --network "$NETWORK" --label parrotpark.lab=true \
      --restart unless-stopped -v "$MONGO_VOLUME:/data" parrotpark/lab-ferretdb:current >/dev/null
  fi
}

# The layout's settings that come from outside the inventory.
layout_env() {
  if [ "$LAYOUT" = seeds ]; then
    PARROTPARK_LAB_MONGO_ADDRESS=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$MONGO") ||
      pp_die "$MONGO is not running (scripts/lab.sh up starts it)"
    [ -n "$PARROTPARK_LAB_MONGO_ADDRESS" ] || pp_die "$MONGO has no address on $NETWORK"
    export PARROTPARK_LAB_MONGO_ADDRESS
  fi
}

start_entrance() {
  local image=parrotpark/lab-base-trixie:current
  if docker container inspect "$ENTRANCE" >/dev/null 2>&1; then
    local running_layout
    running_layout=$(docker inspect -f '{{index .Config.Labels "parrotpark.lab.layout"}}' "$ENTRANCE")
    [ "${running_layout:-default}" = "$LAYOUT" ] ||
      pp_die "the lab runs the ${running_layout:-default} layout, not $LAYOUT: remove it first (make lab-down)"
    docker container start "$ENTRANCE" >/dev/null
  else
    pp_log "starting the entrance container $ENTRANCE ($LAYOUT layout)"
    docker run -d --name "$ENTRANCE" --hostname entrance --network "$NETWORK" \
      --label parrotpark.lab=true --label parrotpark.lab.layout="$LAYOUT" --restart unless-stopped \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
      -v "$ENTRANCE_VOLUME:/var/lib/docker" -p "127.0.0.1:$HTTPS_PORT:443" \
      "$image" >/dev/null
  fi
  pp_wait_systemd "$ENTRANCE"
  # The lab images have no apt lists; a real server does.
  docker exec "$ENTRANCE" sh -c 'ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null'
}

site() {
  layout_env
  pp_log "running site.yml against $INVENTORY"
  ansible-playbook -i "$INVENTORY" site.yml "$@"
}

up() {
  pp_setup
  pp_images
  start_fakescw
  [ "$LAYOUT" = default ] || start_mongo
  start_entrance
  site
  local password
  password=$(cat "$INVENTORY/secrets/lab-user-password")
  cat <<EOF2

The lab is up. Its sites answer on 127.0.0.1:$HTTPS_PORT with certificates
from Caddy's internal CA; send them the names below, for example:
  curl -k --resolve api.$DOMAIN:$HTTPS_PORT:127.0.0.1 https://api.$DOMAIN:$HTTPS_PORT/health/liveliness

  chat (LibreChat):   https://chat.$DOMAIN:$HTTPS_PORT
  API (LiteLLM):      https://api.$DOMAIN:$HTTPS_PORT/v1   key: $INVENTORY/secrets/litellm-master-key
  login (Keycloak):   https://auth.$DOMAIN:$HTTPS_PORT     user: lab   password: $password
  fake Scaleway API:  http://127.0.0.1:$FAKESCW_PORT/_fake/state

Layout: $LAYOUT (LiteLLM and LibreChat on $([ "$LAYOUT" = seeds ] && echo "the GPU server" || echo "the entrance")).
The GPU server follows the schedule (scheduler_* in inventories/lab). By hand:
  docker exec $ENTRANCE parrotpark-gpu up --force
  docker exec $ENTRANCE parrotpark-gpu down
Run site.yml again: ${PARROTPARK_LAB_LAYOUT:+PARROTPARK_LAB_LAYOUT=$LAYOUT }scripts/lab.sh site     Remove the lab: make lab-down
EOF2
}

down() {
  if ! command -v docker >/dev/null 2>&1 || ! pp_engine_answers; then
    pp_die "no container engine answers; nothing to remove"
  fi
  local servers
  servers=$(docker ps -aq --filter label=parrotpark.fakescw.server)
  for id in $servers; do
    local name
    name=$(docker inspect -f '{{.Name}}' "$id" | sed 's#^/##')
    docker container rm -f "$id" >/dev/null 2>&1 || true
    docker volume rm "$name-docker" >/dev/null 2>&1 || true
  done
  docker container rm -f "$ENTRANCE" "$FAKESCW" "$MONGO" >/dev/null 2>&1 || true
  docker volume rm "$ENTRANCE_VOLUME" "$MONGO_VOLUME" >/dev/null 2>&1 || true
  pp_ensure_venv && pp_activate
  python lab/images/factory.py clean "$@"
  rm -rf inventories/lab/secrets inventories/lab-seeds/secrets
  pp_log "removed the lab's containers, volumes, network and secrets"
}

case ${1:-} in
  up) up ;;
  site) shift; pp_ensure_venv && pp_activate && site "$@" ;;
  down) shift; down "$@" ;;
  *) pp_die "usage: scripts/lab.sh up | site [ansible-playbook args] | down [--images]" ;;
esac
