#!/usr/bin/env bash
# The lab: the whole system on this machine, without a cloud account.
#
#   scripts/lab.sh up               build images, start the lab, run site.yml
#   scripts/lab.sh site [args]      run site.yml against the lab again
#   scripts/lab.sh down             remove every container, volume and network the lab made,
#                                   but the registry's cache volume
#   scripts/lab.sh down --images    ... and the registry's cache volume and the lab's image tags
#   scripts/lab.sh status           what of the lab runs, and its addresses
#
# PARROTPARK_LAB_LAYOUT=gpu-gateway (up, site) runs the layout with the gateway
# on the GPU server instead of the default one (the gateway on the entrance):
# inventories/lab-gpu-gateway, with LiteLLM and LibreChat on the GPU server,
# the entrance in neither group gateway nor chat, and an external MongoDB
# stand-in, parrotpark-lab-mongo (FerretDB). Its earlier name, seeds, still works.
#
# This is the entry point: it sets up what the lab needs (the virtualenv, the
# container engine, and for `up` the images and the lab registry); lab/lab.py
# does the rest and holds the lab's names and ports.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PP_ROOT"

case ${1:-} in
  up)
    pp_setup
    pp_images
    ;;
  site | down | status | leftovers)
    pp_ensure_venv
    pp_activate
    ;;
  *) pp_die "usage: scripts/lab.sh up | site [ansible-playbook args] | down [--images] | status" ;;
esac
exec python lab/lab.py "$@"
