# shellcheck shell=bash
# Shared helpers of the scripts in this folder: sourced, never run.
#
# Everything here is idempotent: a second call finds the work done and returns.

PP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PP_CACHE=${PP_CACHE:-$PP_ROOT/.cache}
PP_VENV=${PP_VENV:-$PP_ROOT/.venv}
export PP_ROOT PP_CACHE PP_VENV

# Ansible and molecule settings every script uses.
export ANSIBLE_INJECT_FACT_VARS=false
export ANSIBLE_COLLECTIONS_PATH=$PP_ROOT/collections
export MOLECULE_GLOB='molecule/*/molecule.yml'
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

pp_log() { printf '==> %s\n' "$*" >&2; }
pp_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
pp_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -- "$@"
  else
    pp_die "'$*' needs root; run as root or install sudo"
  fi
}

# Install Debian/Ubuntu packages that are missing (the test harness needs a
# container engine, debootstrap and shellcheck on the machine itself).
pp_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 ||
    pp_die "missing ${missing[*]}, and this is not a Debian/Ubuntu machine: install them by hand"
  pp_log "installing ${missing[*]}"
  local apt_env=(env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1) log
  log=$(mktemp)
  if ! pp_as_root "${apt_env[@]}" apt-get update -q >"$log" 2>&1 ||
    ! pp_as_root "${apt_env[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    pp_die "installing ${missing[*]} with apt-get failed (output above)"
  fi
  rm -f "$log"
}

# The development virtualenv, rebuilt only when the pinned requirements or the
# Python version change.
pp_ensure_venv() {
  local python=${PP_PYTHON:-python3} stamp want
  command -v "$python" >/dev/null 2>&1 || pp_die "$python not found; Python 3.11 or newer is needed"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    pp_die "$($python --version 2>&1) is too old; Python 3.11 or newer is needed"
  want=$(cat "$PP_ROOT/requirements-dev.txt" "$PP_ROOT/constraints-dev.txt" <("$python" --version) | sha256sum | cut -c1-16)
  stamp=$PP_VENV/.parrotpark-stamp
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  # One build at a time: `make lab` and `make test` started together both
  # found the virtualenv out of date, and the second failed on the first's
  # half-made directory. The second waits, then finds it up to date.
  mkdir -p "$(dirname "$PP_VENV")" || pp_die "cannot create $(dirname "$PP_VENV")"
  (
    flock 9 || pp_die "cannot lock $PP_VENV.lock"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      exit 0
    fi
    pp_log "creating the virtualenv $PP_VENV"
    rm -rf "$PP_VENV"
    "$python" -m venv "$PP_VENV" || pp_die "$python -m venv $PP_VENV failed (on Debian: apt-get install python3-venv)"
    "$PP_VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$PP_VENV/bin/pip" install -q -r "$PP_ROOT/requirements-dev.txt" -c "$PP_ROOT/constraints-dev.txt" ||
      pp_die "pip install of requirements-dev.txt failed"
    echo "$want" >"$stamp"
  ) 9>"$PP_VENV.lock" || exit 1
}

pp_activate() {
  # shellcheck disable=SC1091
  . "$PP_VENV/bin/activate"
}

pp_engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

# Use a container engine that answers; otherwise install Debian's docker.io
# and start dockerd (through systemd where it runs, in the background where
# it does not, as in CI containers).
pp_ensure_engine() {
  if command -v docker >/dev/null 2>&1 && pp_engine_answers; then
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || pp_apt_install docker.io
  local log=${PP_DOCKERD_LOG:-/var/log/parrotpark-dockerd.log} timeout=${PP_ENGINE_TIMEOUT:-60}
  local pid="" reason="did not answer within ${timeout}s"
  if [ -d /run/systemd/system ]; then
    pp_log "starting docker.service"
    pp_as_root systemctl start docker.service || true
  else
    pp_log "starting dockerd in the background (log: $log)"
    pid=$(pp_as_root sh -c "setsid nohup dockerd >>'$log' 2>&1 </dev/null & echo \$!")
  fi
  local started=$SECONDS
  while [ $((SECONDS - started)) -lt "$timeout" ]; do
    pp_engine_answers && return 0
    if [ -n "$pid" ] && [ ! -d "/proc/$pid" ]; then
      reason="exited"
      break
    fi
    sleep 1
  done
  {
    echo "error: the container engine $reason."
    echo "docker info said: $(docker info 2>&1 | tail -n 3)"
    [ -f "$log" ] && { echo "last lines of $log:"; tail -n 20 "$log"; }
    echo "The tests need a working container engine; they do not fall back to mocks."
  } >&2
  exit 1
}

# Everything a command of this project needs before it can run.
pp_setup() {
  # chromium: the lab's browser test (tests/lab/test_browser.py, driven by Playwright).
  pp_apt_install debootstrap shellcheck chromium
  command -v mvn >/dev/null 2>&1 || pp_apt_install maven # fetches the Keycloak distribution
  pp_ensure_venv
  pp_activate
  pp_ensure_engine
}

# Build (or find cached) lab images and start the lab registry.
# Lab images that install from PyPI, npm or the Go module proxy during their
# build, and the lab's hosts, trust what this host trusts (a TLS-inspecting
# proxy's CA included), unless PARROTPARK_EXTRA_CA_BUNDLE names another bundle.
pp_extra_ca() {
  if [ -z "${PARROTPARK_EXTRA_CA_BUNDLE:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    export PARROTPARK_EXTRA_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
  fi
}

# Ansible runs under Mitogen's strategy (mitogen_linear) for what exports
# this: one Python per host for a whole playbook run instead of one
# `docker exec` and one module start per task. A molecule scenario takes
# about a fifth less CPU, a site.yml that changes nothing a third of the time
# (docs/development.md, "The engine"). The roles and their modules are the
# same. scripts/test.sh uses it for molecule, the gateway-on-GPU layout's
# first site.yml and the lab's other site.yml runs (tests/lab/lab_support.py,
# site_run, under_mitogen); the default layout's first and second site.yml,
# the restore drill's restore.yml and the scheduler's nested runs use
# Ansible's own strategy, as users do. WHAT names the runs in the message.
# PP_MITOGEN=0 (or its earlier name for molecule, PP_MOLECULE_MITOGEN=0)
# runs Ansible's linear strategy everywhere.
pp_mitogen_strategy() {
  local what=${1:-Ansible} plugins
  unset ANSIBLE_STRATEGY ANSIBLE_STRATEGY_PLUGINS
  if [ "${PP_MITOGEN:-1}" = 0 ] || [ "${PP_MOLECULE_MITOGEN:-1}" = 0 ]; then
    echo "$what: Ansible's linear strategy (PP_MITOGEN=0)"
    return 0
  fi
  plugins=$(python -c 'import os, ansible_mitogen.plugins.strategy as s; print(os.path.dirname(s.__file__))' 2>/dev/null) || {
    echo "error: Mitogen is not in the virtualenv ($PP_VENV; requirements-dev.txt pins it): run scripts/test.sh setup, or set PP_MITOGEN=0" >&2
    return 1
  }
  export ANSIBLE_STRATEGY_PLUGINS=$plugins ANSIBLE_STRATEGY=mitogen_linear
  echo "$what: Mitogen's strategy mitogen_linear (PP_MITOGEN=0 for Ansible's linear)"
}

pp_images() {
  pp_extra_ca
  python "$PP_ROOT/lab/images/factory.py" ensure
}

# Wait (a bounded minute) until systemd in container $1 has booted.
pp_wait_systemd() {
  local container=$1 state="" deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(docker exec "$container" systemctl is-system-running --wait 2>/dev/null || true)
    case $state in running | degraded) return 0 ;; esac
    sleep 1
  done
  docker logs --tail 30 "$container" >&2 || true
  pp_die "$container did not boot within 60s (systemd says '${state:-nothing}')"
}
