#!/usr/bin/env bash
# The lab: run the system on this machine without a cloud account.
#
#   scripts/lab.sh up               build images, start the lab, run site.yml
#   scripts/lab.sh down             remove the lab's containers, volumes and network
#   scripts/lab.sh down --images    ... and the lab's image tags
#
# What `up` does today: the entrance server is a systemd container on the lab
# network, and site.yml installs and configures its container engine, which
# then pulls and runs an image from the lab registry. The entrance services,
# the fake Scaleway API and the GPU server join the lab in later releases.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PP_ROOT"

ENTRANCE=parrotpark-lab-entrance
NETWORK=parrotpark-lab
ENTRANCE_VOLUME=$ENTRANCE-docker

start_entrance() {
  local image=parrotpark/lab-base-trixie:current
  if docker container inspect "$ENTRANCE" >/dev/null 2>&1; then
    docker container start "$ENTRANCE" >/dev/null
  else
    pp_log "starting the entrance container $ENTRANCE"
    docker run -d --name "$ENTRANCE" --hostname entrance --network "$NETWORK" \
      --label parrotpark.lab=true --restart unless-stopped \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
      -v "$ENTRANCE_VOLUME:/var/lib/docker" \
      "$image" >/dev/null
  fi
  # systemd answers only once its bus is up; give it a bounded minute.
  local state="" deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(docker exec "$ENTRANCE" systemctl is-system-running --wait 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    sleep 1
  done
  case $state in
    running | degraded) ;;
    *)
      docker logs --tail 30 "$ENTRANCE" >&2 || true
      pp_die "the entrance container did not boot within 60s (systemd says '${state:-nothing}')"
      ;;
  esac
  # The lab images have no apt lists; a real server does.
  docker exec "$ENTRANCE" sh -c 'ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null'
}

up() {
  pp_setup
  pp_images
  start_entrance
  pp_log "running site.yml against inventories/lab"
  ansible-playbook -i inventories/lab site.yml
  pp_log "checking the entrance's engine against the lab registry"
  docker exec "$ENTRANCE" docker run --rm --pull always \
    parrotpark-lab-registry:5000/parrotpark/lab-hello:current
  cat <<EOF

The lab is up.
  entrance server:  docker exec -it $ENTRANCE bash
  lab registry:     http://127.0.0.1:${PARROTPARK_LAB_REGISTRY_PORT:-5000}/v2/_catalog
  run again:        ansible-playbook -i inventories/lab site.yml   (after: . .venv/bin/activate)
  remove it:        make lab-down

Today the lab holds the entrance server with its container engine (role
parrotpark.llm.docker). Keycloak, LiteLLM, LibreChat, the scheduler, the fake
Scaleway API and the GPU server join it as their issues land.
EOF
}

down() {
  if ! command -v docker >/dev/null 2>&1 || ! pp_engine_answers; then
    pp_die "no container engine answers; nothing to remove"
  fi
  docker container rm -f "$ENTRANCE" >/dev/null 2>&1 || true
  docker volume rm "$ENTRANCE_VOLUME" >/dev/null 2>&1 || true
  pp_ensure_venv && pp_activate
  python lab/images/factory.py clean "$@"
  pp_log "removed the entrance container and its volume"
}

case ${1:-} in
  up) up ;;
  down) shift; down "$@" ;;
  *) pp_die "usage: scripts/lab.sh up | down [--images]" ;;
esac
