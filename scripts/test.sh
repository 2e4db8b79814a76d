#!/usr/bin/env bash
# Run every test of the collection, stage by stage, on a fresh or warm machine.
#
#   scripts/test.sh                 # all stages
#   scripts/test.sh lint unit       # only these stages (setup always runs)
#
# Stages: setup lint sanity unit build integration images molecule lab gpu-gateway lab-down
# (seeds, the earlier name of gpu-gateway, still names that stage)
#
# After setup, two tracks run side by side (most stages leave one of the two
# cores idle for long stretches: ansible runs one task at a time):
#   checks:     lint, sanity, unit, build, integration, then molecule
#   containers: images, then lab, gpu-gateway and lab-down
# molecule waits for images too. Each stage logs to .cache/stages/<stage>.log,
# printed whole when the stage ends; the end shows how long each stage took
# and a summary line. Exit status is non-zero when any stage failed.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$PP_ROOT" || exit 1

ALL_STAGES=(lint sanity unit build integration images molecule lab gpu-gateway lab-down)
CHECK_STAGES=(lint sanity unit build integration)
STAGE_DIR=$PP_CACHE/stages

# The molecule scenarios to run (default: all of them).
MOLECULE_SCENARIOS=${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort | tr '\n' ' ')}

# One line at a time from stages that run side by side.
say() {
  { flock 9 && printf '%s\n' "$*"; } 9>"$STAGE_DIR/.print"
}

# Runs stage NAME (function stage_NAME) with its output in STAGE_DIR/NAME.log,
# writes "SECONDS RESULT" to STAGE_DIR/NAME.result and prints the log whole
# when the stage ends. Returns the stage's status.
run_stage() {
  local name=$1 started status seconds result
  started=$(date +%s)
  say "######## stage $name started ########"
  ("stage_${name//-/_}") >"$STAGE_DIR/$name.log" 2>&1 # a subshell: a stage that exits cannot end the run
  status=$?
  seconds=$(($(date +%s) - started))
  if [ "$status" -eq 0 ]; then result=passed; else result=failed; fi
  echo "$seconds $result" >"$STAGE_DIR/$name.result"
  {
    flock 9
    printf '\n######## stage %s ########\n' "$name"
    cat "$STAGE_DIR/$name.log"
    printf '######## stage %s %s in %ss ########\n' "$name" "$result" "$seconds"
  } 9>"$STAGE_DIR/.print"
  return "$status"
}

skip_stage() {
  echo "0 skipped ($2)" >"$STAGE_DIR/$1.result"
}

stage_setup() { pp_setup; }

stage_lint() {
  local rc=0
  yamllint --strict . || rc=1
  ansible-lint --profile production || rc=1
  ruff check . || rc=1
  ruff format --check . || rc=1
  shellcheck -x scripts/*.sh .ci/run lab/images/rootfs/*.sh || rc=1
  python tools/check_argument_specs.py || rc=1
  return $rc
}

# ansible-test downloads a pip bootstrap script from a host that is not a
# package registry; give it tools/get_pip_offline.py in its cache instead.
install_pip_bootstrap() {
  local version cache
  version=$(python -c 'import re, ansible_test._internal.python_requirements as m, inspect
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(m.get_venv_packages)).group(1))') || return 1
  cache=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
  [ -f "$cache" ] && ! grep -q 'Stand-in for ansible-test' "$cache" && return 0
  mkdir -p "$(dirname "$cache")" && cp tools/get_pip_offline.py "$cache"
}

stage_sanity() {
  # ansible-test needs the checkout laid out as ansible_collections/NS/NAME.
  local dest=$PP_CACHE/ansible-test/ansible_collections/parrotpark/llm
  install_pip_bootstrap || return 1
  rm -rf "$dest" && mkdir -p "$dest" || return 1
  git ls-files -z --cached --others --exclude-standard |
    grep -z -v '^collections/' |
    tar --null -T - -cf - | tar -C "$dest" -xf - || return 1
  (cd "$dest" && git init -q . && git add -A && ansible-test sanity --color no --python "$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" --venv --requirements)
}

stage_unit() { python -m pytest -q tests/unit; }

stage_build() {
  # The collection builds, installs into an empty directory, and ansible-doc
  # shows its roles from there.
  local out=$PP_CACHE/build
  rm -rf "$out" && mkdir -p "$out/collections" || return 1
  local doc
  ansible-galaxy collection build --force --output-path "$out" . &&
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-galaxy collection install --no-deps \
      -p "$out/collections" "$out"/parrotpark-llm-*.tar.gz &&
    doc=$(ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t role parrotpark.llm.docker) || return 1
  if [[ $doc != *docker_daemon_insecure_registries* ]]; then
    echo "ansible-doc -t role parrotpark.llm.docker does not show the role's options:"
    echo "$doc"
    return 1
  fi
  # Every plugin renders its documentation from the installed tarball, with
  # the option a user would look for.
  local plugin expect
  for plugin in module:scaleway_instance:placement_order module:scaleway_instance_info:instances \
    module:scaleway_server_type_info:gpu_only inventory:scaleway:connect_with filter:vllm_fit:gpu_memory_gb \
    filter:vllm_settings:fits filter:vllm_command:settings filter:systemd_calendar:time_zone \
    filter:litellm_model_list:upstream_host filter:litellm_fallbacks:fallback_name role:_common:_common_wait_kind \
    module:scaleway_security_group:dest_port_from role:firewall:firewall_private_networks \
    role:unattended_upgrades:unattended_upgrades_reboot_time role:alerts:alerts_webhook_url \
    role:reports:reports_allowed_role; do
    IFS=: read -r kind plugin expect <<<"$plugin"
    doc=$(ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t "$kind" "parrotpark.llm.$plugin") || return 1
    if [[ $doc != *"$expect"* ]]; then
      echo "ansible-doc -t $kind parrotpark.llm.$plugin does not mention $expect"
      return 1
    fi
  done
  # Every role and every plugin renders its documentation (ansible-doc fails
  # on a broken DOCUMENTATION or argument spec).
  local path name
  for path in roles/*/ plugins/modules/*.py plugins/filter/*.py plugins/inventory/*.py; do
    name=$(basename "$path" .py)
    case $path in
      roles/*) kind=role ;;
      plugins/modules/*) kind=module ;;
      plugins/filter/*) kind=filter ;;
      plugins/inventory/*) kind=inventory ;;
    esac
    ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-doc -t "$kind" "parrotpark.llm.$name" >/dev/null || {
      echo "ansible-doc -t $kind parrotpark.llm.$name fails"
      return 1
    }
  done
  # The installed collection's playbooks are callable by their FQCN (the
  # dependencies come from the ansible package in the virtualenv).
  ANSIBLE_COLLECTIONS_PATH=$out/collections ansible-playbook --syntax-check -i inventories/lab parrotpark.llm.site ||
    return 1
  echo "built, installed and documented: $(basename "$out"/parrotpark-llm-*.tar.gz)"
}

# Two workers: most of the time goes to ansible-playbook processes. The 15
# slowest tests are listed, to show where the stage spends its time.
stage_integration() { python -m pytest -q -n "${PP_TEST_WORKERS:-2}" --durations=15 tests/integration; }

# The factory prints "built in" for each image it had to build: the log tells
# whether this run started with cold images (written to the durations file).
stage_images() {
  mkdir -p "$PP_CACHE" || return 1
  pp_images 2>&1 | tee "$PP_CACHE/images.log"
}

# The lab's stages are the longest chain of a run, and the checks track
# beside them (molecule last) ends long before: so molecule yields the CPU
# to the lab. The checks track runs at nice PP_CHECKS_NICE (track_checks);
# with the engine's cgroupfs driver on cgroup v1 (this machine), molecule's
# platforms and the containers their engines start share one CPU cgroup
# whose weight is PP_MOLECULE_CPU_SHARES against 1024 for the engine's other
# containers (molecule/_shared/create.yml and prepare_engine.yml read
# PP_MOLECULE_CGROUP_PARENT). A weight only decides who waits when both
# want the CPU: idle CPU still goes to molecule.
molecule_cpu_weight() {
  local dir=/sys/fs/cgroup/cpu/parrotpark-molecule shares=${PP_MOLECULE_CPU_SHARES:-256}
  unset PP_MOLECULE_CGROUP_PARENT
  if [ "$(docker info --format '{{.CgroupDriver}} {{.CgroupVersion}}' 2>/dev/null)" != "cgroupfs 1" ] ||
    ! { mkdir -p "$dir" && echo "$shares" >"$dir/cpu.shares"; } 2>/dev/null; then
    echo "molecule runs at the engine's default CPU weight (a cgroup of its own needs cgroup v1 and the cgroupfs driver)"
    return 0
  fi
  export PP_MOLECULE_CGROUP_PARENT=/parrotpark-molecule
  echo "molecule's containers run in the CPU cgroup $PP_MOLECULE_CGROUP_PARENT (weight $shares against 1024)"
}

# Scenarios run PP_MOLECULE_JOBS at a time (default 3: most of a scenario is
# waiting for image pulls, packages and services). Each one writes its own
# log under .cache/molecule/; a failed scenario's log is printed in full.
# The slowest scenarios of the last run start first (their durations are
# kept in .cache/molecule/<scenario>.seconds; a fresh clone uses those of
# molecule/durations, measured on a two-core machine), so the stage does not
# end with one long scenario running alone.
stage_molecule() {
  local scenario rc=0 jobs=${PP_MOLECULE_JOBS:-3} logs=$PP_CACHE/molecule
  pp_images >/dev/null || return 1 # cheap when warm; lets `test.sh molecule` run alone
  mkdir -p "$logs" || return 1
  molecule_cpu_weight
  pp_mitogen_strategy molecule || return 1
  run_scenario() {
    local started status
    started=$(date +%s)
    molecule test -s "$1" >"$logs/$1.log" 2>&1
    status=$?
    echo "$(($(date +%s) - started))" >"$logs/$1.seconds"
    printf -- '-------- molecule %s %s in %ss (log: %s) --------\n' "$1" \
      "$([ $status -eq 0 ] && echo passed || echo FAILED)" "$(($(date +%s) - started))" "$logs/$1.log"
    [ $status -eq 0 ] || cat "$logs/$1.log"
    return $status
  }
  local running=0 ordered
  ordered=$(for scenario in $MOLECULE_SCENARIOS; do
    printf '%s %s\n' "$(cat "$logs/$scenario.seconds" 2>/dev/null ||
      awk -v s="$scenario" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }' molecule/durations)" "$scenario"
  done | sort -rn -k1,1 -s | cut -d' ' -f2)
  for scenario in $ordered; do
    if [ "$running" -ge "$jobs" ]; then
      wait -n || rc=1
      running=$((running - 1))
    fi
    printf -- '-------- molecule scenario %s started --------\n' "$scenario"
    run_scenario "$scenario" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || rc=1
    running=$((running - 1))
  done
  return $rc
}

# The lab in one layout: the README's first command works, then the
# end-to-end test of that layout drives the system as its users and the
# scheduler do, and ends with a second site.yml that must change nothing;
# then the lab goes, but for the registry and its network, which molecule
# scenarios may be using at the same time: `lab.py down --keep-registry`, and
# nothing else of the lab may be left. The timers stay off so that only the
# test starts the GPU services. PARROTPARK_LAB_KEEP=1 keeps a failed lab.
#
#   lab_in_layout LAYOUT ENGINE TEST_FILE...
#
# ENGINE is the strategy of the layout's first site.yml: `ansible`, Ansible's
# own, as the README's `make lab` runs it, or `mitogen` (pp_mitogen_strategy,
# PP_MITOGEN=0 turns it off), for a layout whose entrance roles the default
# layout already runs on Ansible's strategy (docs/development.md, "The engine").
lab_in_layout() {
  local layout=$1 engine=$2 rc=0
  shift 2 # the test files
  export PARROTPARK_LAB_TIMERS=off PARROTPARK_LAB_LAYOUT=$layout
  case $engine in
    ansible) scripts/lab.sh up || rc=1 ;;
    mitogen) (pp_mitogen_strategy "the $layout layout's first site.yml" && scripts/lab.sh up) || rc=1 ;;
    *)
      echo "lab_in_layout: ENGINE is ansible or mitogen, not '$engine'"
      return 1
      ;;
  esac
  if [ "$rc" -eq 0 ]; then
    printf -- '-------- end-to-end test (%s layout) --------\n' "$layout"
    python -m pytest "$@" -v -x -p no:cacheprovider -o addopts= --durations=0 || rc=1
  fi
  if [ "$rc" -ne 0 ] && [ "${PARROTPARK_LAB_KEEP:-0}" = 1 ]; then
    echo "the lab is kept for inspection (make lab-down removes it)"
    return 1
  fi
  printf -- '-------- teardown (the registry stays for molecule) --------\n'
  python lab/lab.py down --keep-registry || return 1
  python lab/lab.py leftovers --except-registry || return 1
  return $rc
}

# The default layout (gateway and chat on the entrance), faults included, and
# a real browser's login (screenshots in .cache/browser/); then the same lab
# on demand, the cost report of what it did and the public surface, and no secret in any log (the restart handlers once printed
# LiteLLM's keys with -v: tests/unit/test_no_log_containers.py keeps them hidden);
# last, the restore drill, which replaces the entrance with a restored one.
stage_lab() {
  lab_in_layout default ansible tests/lab/test_e2e.py tests/lab/test_browser.py tests/lab/test_e2e_on_demand.py \
    tests/lab/test_e2e_report.py tests/lab/test_public_surface.py tests/lab/test_entrance_upkeep.py tests/lab/test_alerts.py \
    tests/lab/test_secrets_not_logged.py tests/lab/test_restore_drill.py
}

# The gateway on the GPU server: LiteLLM and LibreChat there, the entrance in
# neither group gateway nor chat; on demand there too, the public surface, and
# no secret in any log. Its first site.yml runs Mitogen's strategy: the roles
# it applies to the entrance run on Ansible's in the default layout, and the
# ones it puts on the GPU server run on Ansible's in the scheduler's runs.
stage_gpu_gateway() {
  lab_in_layout gpu-gateway mitogen tests/lab/test_e2e_gpu_gateway.py tests/lab/test_public_surface.py \
    tests/lab/test_entrance_upkeep.py tests/lab/test_alerts.py tests/lab/test_secrets_not_logged.py
}

# `make lab-down` once nothing else uses the registry: no container, volume or
# network of the lab is left behind (the cached images and the registry's
# cache volume stay). A lab you had running is torn down too.
stage_lab_down() {
  scripts/lab.sh down || return 1
  python lab/lab.py leftovers || return 1
  docker image inspect parrotpark/lab-base-trixie:current >/dev/null || {
    echo "make lab-down removed the cached images"
    return 1
  }
  echo "nothing of the lab is left but its cached images"
}

stages=()
for stage in "$@"; do
  [ "$stage" = seeds ] && stage=gpu-gateway # the stage's earlier name
  stages+=("$stage")
done
[ ${#stages[@]} -eq 0 ] && stages=("${ALL_STAGES[@]}")
for stage in "${stages[@]}"; do
  [[ " ${ALL_STAGES[*]} " == *" $stage "* ]] ||
    pp_die "unknown stage '$stage'; stages are: ${ALL_STAGES[*]} (and seeds, the earlier name of gpu-gateway)"
done
wanted() { [[ " ${stages[*]} " == *" $1 "* ]]; }
# The stages that run lab images need the images stage before them.
for stage in molecule lab gpu-gateway; do
  if wanted "$stage" && ! wanted images; then stages+=(images); fi
done
# and the lab's stages leave the registry to lab-down.
if { wanted lab || wanted gpu-gateway; } && ! wanted lab-down; then stages+=(lab-down); fi

# lint ... integration one after the other, then molecule once the images are there.
track_checks() {
  local stage
  renice -n "${PP_CHECKS_NICE:-10}" -p "$BASHPID" >/dev/null || true # see stage_molecule
  for stage in "${CHECK_STAGES[@]}"; do
    if wanted "$stage"; then run_stage "$stage"; fi
  done
  wanted molecule || return 0
  while [ ! -f "$STAGE_DIR/images.result" ]; do sleep 2; done
  if [[ $(cat "$STAGE_DIR/images.result") == *passed ]]; then
    run_stage molecule
  else
    skip_stage molecule "images failed"
  fi
}

# images, then the lab in both layouts; lab-down once molecule is done with the registry.
track_containers() {
  local stage
  if wanted images && ! run_stage images; then
    for stage in lab gpu-gateway lab-down; do
      if wanted "$stage"; then skip_stage "$stage" "images failed"; fi
    done
    return 0
  fi
  for stage in lab gpu-gateway; do
    if wanted "$stage"; then run_stage "$stage"; fi
  done
  if wanted lab-down; then
    wait "$checks_pid" # molecule runs in the checks track
    run_stage lab-down
  fi
}

total_started=$(date +%s)
mkdir -p "$STAGE_DIR" && rm -f "$STAGE_DIR"/*.result "$STAGE_DIR"/*.log
printf '\n######## stage setup ########\n'
started=$(date +%s)
if stage_setup; then setup_result=passed; else setup_result=failed; fi
echo "$(($(date +%s) - started)) $setup_result" >"$STAGE_DIR/setup.result"
printf '######## stage setup %s in %ss ########\n' "$setup_result" "$(($(date +%s) - started))"
if [ "$setup_result" = failed ]; then
  for stage in "${stages[@]}"; do skip_stage "$stage" "setup failed"; done
else
  track_checks &
  checks_pid=$!
  track_containers
  wait "$checks_pid" 2>/dev/null || true # already waited for when lab-down ran
fi

STAGE_NAMES=(setup) STAGE_TIMES=() STAGE_RESULTS=()
for stage in "${ALL_STAGES[@]}"; do
  if wanted "$stage"; then STAGE_NAMES+=("$stage"); fi
done
for stage in "${STAGE_NAMES[@]}"; do
  if [ -f "$STAGE_DIR/$stage.result" ]; then
    read -r seconds result <"$STAGE_DIR/$stage.result"
  else
    seconds=0 result="skipped (not run)"
  fi
  STAGE_TIMES+=("$seconds")
  STAGE_RESULTS+=("$result")
done

passed=0 failed=0 skipped=0
printf '\n%-14s %-24s %s\n' stage result seconds
for i in "${!STAGE_NAMES[@]}"; do
  printf '%-14s %-24s %s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}" "${STAGE_TIMES[$i]}"
  case ${STAGE_RESULTS[$i]} in
    passed) passed=$((passed + 1)) ;;
    failed) failed=$((failed + 1)) ;;
    *) skipped=$((skipped + 1)) ;;
  esac
done
total=$(($(date +%s) - total_started))
printf 'total %ss\n' "$total"
# Each run's stage times, for tests/ci-durations.json (the committed record of
# the last full run on a fresh clone; docs/development.md).
python3 - "$PP_CACHE/ci-durations.json" "$total" "${STAGE_NAMES[@]}" -- "${STAGE_TIMES[@]}" -- "${STAGE_RESULTS[@]}" <<'PY' || true
import json, subprocess, sys, time
out, total, *rest = sys.argv[1:]
first = rest.index("--")
second = rest.index("--", first + 1)
names, times, results = rest[:first], rest[first + 1 : second], rest[second + 1 :]
log = __import__("pathlib").Path(out).with_name("images.log")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
record = {
    "commit": commit,
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "images_cold": log.is_file() and "built in" in log.read_text(),
    "total_seconds": int(total),
    "stages": {name: {"seconds": int(t), "result": r} for name, t, r in zip(names, times, results)},
}
with open(out, "w") as handle:
    json.dump(record, handle, indent=2)
    handle.write("\n")
PY
echo "stages: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
