"""lab/lab.py without containers: its settings, the docker commands it runs, what it reports as left."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

import lab

ROOT = Path(__file__).resolve().parents[2]


class FakeDocker:
    """Stands in for lab.docker: records each call and answers from canned (args prefix -> stdout, rc)."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[str, int]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, check: bool = True, timeout: float | None = None):
        self.calls.append(args)
        for prefix, (stdout, rc) in sorted(self.answers.items(), key=lambda item: -len(item[0])):
            if args[: len(prefix)] == prefix:
                if check and rc != 0:
                    raise lab.LabError(f"docker {' '.join(args[:3])} … failed (exit {rc})")
                return subprocess.CompletedProcess(["docker", *args], rc, stdout, "")
        return subprocess.CompletedProcess(["docker", *args], 0, "", "")


@pytest.fixture
def fake_docker(monkeypatch):
    def install(answers=None):
        fake = FakeDocker(answers)
        monkeypatch.setattr(lab, "docker", fake)
        return fake

    return install


# --- settings ---------------------------------------------------------------
def test_defaults_without_environment():
    config = lab.LabConfig.from_environ({})
    assert config == lab.LabConfig(layout="default", https_port=8443, fakescw_port=8383, timers=True)
    assert config.inventory == Path("inventories/lab")
    assert config.secrets == ROOT / "inventories" / "lab" / "secrets"
    assert config.fake_url == "http://127.0.0.1:8383"


def test_environment_chooses_layout_ports_and_timers():
    config = lab.LabConfig.from_environ(
        {
            "PARROTPARK_LAB_LAYOUT": "gpu-gateway",
            "PARROTPARK_LAB_HTTPS_PORT": "443",
            "PARROTPARK_LAB_FAKESCW_PORT": "9383",
            "PARROTPARK_LAB_TIMERS": "off",
        }
    )
    assert config == lab.LabConfig(layout="gpu-gateway", https_port=443, fakescw_port=9383, timers=False)
    assert config.inventory == Path("inventories/lab-gpu-gateway")
    assert config.secrets == ROOT / "inventories" / "lab-gpu-gateway" / "secrets"
    assert config.fake_url == "http://127.0.0.1:9383"


def test_old_layout_name_seeds_is_the_gpu_gateway_layout():
    # PARROTPARK_LAB_LAYOUT=seeds (the layout's earlier name) keeps working: the same layout and inventory.
    config = lab.LabConfig.from_environ({"PARROTPARK_LAB_LAYOUT": "seeds"})
    assert config.layout == "gpu-gateway"
    assert config == lab.LabConfig.from_environ({"PARROTPARK_LAB_LAYOUT": "gpu-gateway"})
    assert config.inventory == Path("inventories/lab-gpu-gateway")
    assert lab.LabConfig(layout="seeds") == lab.LabConfig(layout="gpu-gateway")
    assert [lab.layout_name(name) for name in ("seeds", "gpu-gateway", "default")] == [
        "gpu-gateway",
        "gpu-gateway",
        "default",
    ]


def test_every_alias_names_a_layout_and_no_layout_is_an_alias():
    assert set(lab.LAYOUT_ALIASES.values()) <= set(lab.INVENTORIES)
    assert not set(lab.LAYOUT_ALIASES) & set(lab.INVENTORIES)


def test_empty_variables_mean_the_defaults():
    # As ${VAR:-default} in the shell: set but empty is the default.
    empty = {"PARROTPARK_LAB_LAYOUT": "", "PARROTPARK_LAB_HTTPS_PORT": "", "PARROTPARK_LAB_FAKESCW_PORT": ""}
    assert lab.LabConfig.from_environ(empty) == lab.LabConfig()


def test_unknown_layout_is_refused_with_the_choices():
    with pytest.raises(lab.LabError) as caught:
        lab.LabConfig.from_environ({"PARROTPARK_LAB_LAYOUT": "split"})
    assert str(caught.value) == (
        "PARROTPARK_LAB_LAYOUT must be default, gpu-gateway or seeds (the old name of gpu-gateway) (got 'split')"
    )


@pytest.mark.parametrize("value", ["https", "0", "65536", "-1", "84 43"])
def test_bad_port_is_refused_naming_the_variable(value):
    with pytest.raises(lab.LabError) as caught:
        lab.LabConfig.from_environ({"PARROTPARK_LAB_HTTPS_PORT": value})
    assert str(caught.value) == f"PARROTPARK_LAB_HTTPS_PORT must be a port number, 1 to 65535 (got '{value}')"


def test_names_agree_with_the_inventories_and_the_image_manifest():
    """The module reads the fake's account and the domain from the inventory, the network from images.yml."""
    registry = yaml.safe_load((ROOT / "lab" / "images" / "images.yml").read_text())["registry"]
    assert (
        (lab.NETWORK, lab.REGISTRY_VOLUME)
        == (registry["network"], registry["volume"])
        == (
            "parrotpark-lab",
            "parrotpark-lab-registry-cache",
        )
    )
    settings = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml").read_text())
    assert settings["scheduler_scaleway_api_url"] == f"http://{lab.FAKESCW}:{lab.FAKESCW_CONTAINER_PORT}"
    assert lab.DOMAIN == "lab.parrotpark.test"
    assert lab.SCW_SECRET_KEY == "11111111-2222-4333-8444-555555555555"
    assert lab.SCW_PROJECT_ID == lab.SCW_ORGANIZATION_ID == "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e"
    for layout, inventory in lab.INVENTORIES.items():
        hosts = yaml.safe_load((ROOT / inventory / "hosts.yml").read_text())
        assert lab.ENTRANCE in hosts["all"]["children"]["entrance"]["hosts"], layout


# --- the docker commands ------------------------------------------------------
def published(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-p"]


def test_fakescw_run_command():
    argv = lab.fakescw_argv(lab.LabConfig(fakescw_port=9383))
    assert argv == [
        "run", "-d", "--name", "parrotpark-lab-fakescw", "--network", "parrotpark-lab",
        "--label", "parrotpark.lab=true", "--restart", "unless-stopped", "-p", "127.0.0.1:9383:8383",
        "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{ROOT / 'lab'}:/opt/lab:ro",
        "-e", "PYTHONPATH=/opt/lab",
        "parrotpark/lab-fakescw:current", "python3", "-m", "fakescw", "--host", "0.0.0.0", "--port", "8383",
        "--backend", "docker", "--docker-network", "parrotpark-lab",
        "--docker-image", "parrotpark/lab-engine-trixie:current",
        "--secret-key", "11111111-2222-4333-8444-555555555555",
        "--project-id", "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e",
        "--organization-id", "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e",
    ]  # fmt: skip


@pytest.mark.parametrize("layout", ["default", "gpu-gateway"])
def test_entrance_run_command(layout):
    """The entrance's HTTPS port is the same inside (Caddy listens on the stack's parrotpark_https_port)."""
    argv = lab.entrance_argv(lab.LabConfig(layout=layout, https_port=9443))
    assert argv == [
        "run", "-d", "--name", "parrotpark-lab-entrance", "--hostname", "entrance", "--network", "parrotpark-lab",
        "--label", "parrotpark.lab=true", "--label", f"parrotpark.lab.layout={layout}", "--restart", "unless-stopped",
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/tmp",
        "-v", "parrotpark-lab-entrance-docker:/var/lib/docker", "-p", "127.0.0.1:9443:9443",
        "parrotpark/lab-base-trixie:current",
    ]  # fmt: skip


def test_mongo_run_command():
    assert lab.mongo_argv() == [
        "run", "-d", "--name", "parrotpark-lab-mongo", "--network", "parrotpark-lab", "--label", "parrotpark.lab=true",
        "--restart", "unless-stopped", "-v", "parrotpark-lab-mongo-data:/data", "parrotpark/lab-ferretdb:current",
    ]  # fmt: skip


def test_published_ports_are_on_the_loopback_only():
    config = lab.LabConfig()
    for argv in (lab.fakescw_argv(config), lab.entrance_argv(config), lab.mongo_argv()):
        assert all(port.startswith("127.0.0.1:") for port in published(argv)), argv


@pytest.mark.parametrize("label", ["gpu-gateway", "seeds"])
def test_existing_entrance_of_another_layout_is_refused(fake_docker, label):
    # An entrance started before the rename carries the label parrotpark.lab.layout=seeds: the gpu-gateway layout.
    docker = fake_docker({("container", "inspect"): ("[]", 0), ("inspect", "-f"): (f"{label}\n", 0)})
    with pytest.raises(lab.LabError) as caught:
        lab.start_entrance(lab.LabConfig(layout="default"))
    assert str(caught.value) == "the lab runs the gpu-gateway layout, not default: remove it first (make lab-down)"
    assert ("container", "start", lab.ENTRANCE) not in docker.calls


def test_existing_entrance_labelled_seeds_is_started_in_the_gpu_gateway_layout(fake_docker):
    docker = fake_docker(
        {
            ("container", "inspect"): ("[]", 0),
            ("inspect", "-f"): ("seeds\n", 0),
            ("port", lab.ENTRANCE): ("8443/tcp -> 127.0.0.1:8443\n", 0),
            ("exec", lab.ENTRANCE, "systemctl"): ("running\n", 0),
        }
    )
    lab.start_entrance(lab.LabConfig.from_environ({"PARROTPARK_LAB_LAYOUT": "gpu-gateway"}))
    assert ("container", "start", lab.ENTRANCE) in docker.calls
    assert not [call for call in docker.calls if call[0] == "run"]


@pytest.mark.parametrize(
    ("published", "what"),
    [
        (
            "443/tcp -> 127.0.0.1:8443\n",
            "443/tcp -> 127.0.0.1:8443",
        ),  # started by a lab before the port was the stack's
        ("9443/tcp -> 127.0.0.1:9443\n", "9443/tcp -> 127.0.0.1:9443"),  # another PARROTPARK_LAB_HTTPS_PORT
        ("", "nothing"),
    ],
)
def test_existing_entrance_on_another_port_is_refused(fake_docker, published, what):
    docker = fake_docker(
        {("container", "inspect"): ("[]", 0), ("inspect", "-f"): ("default\n", 0), ("port",): (published, 0)}
    )
    with pytest.raises(lab.LabError) as caught:
        lab.start_entrance(lab.LabConfig(layout="default"))
    assert str(caught.value) == (
        f"the entrance publishes {what}, not 8443/tcp -> 127.0.0.1:8443 (PARROTPARK_LAB_HTTPS_PORT):"
        " remove it first (make lab-down)"
    )
    assert ("container", "start", lab.ENTRANCE) not in docker.calls


def test_status_reads_a_seeds_label_as_the_gpu_gateway_layout(fake_docker, monkeypatch, capsys):
    rows = f"{lab.ENTRANCE}\trunning\tseeds\n{lab.MONGO}\trunning\t\n"
    fake_docker({("ps", "-a"): (rows, 0)})
    monkeypatch.setattr(lab, "fake_answers", lambda config: False)
    assert lab.status(lab.LabConfig(layout="gpu-gateway")) is True
    out = capsys.readouterr().out
    assert f"{lab.ENTRANCE:<36} running  (gpu-gateway layout)" in out
    assert "the lab runs the" not in out  # the label's old name is not another layout


def test_entrance_is_started_from_its_command_and_waited_for(fake_docker):
    docker = fake_docker({("container", "inspect"): ("", 1), ("exec", lab.ENTRANCE, "systemctl"): ("degraded\n", 1)})
    config = lab.LabConfig(layout="gpu-gateway")
    lab.start_entrance(config)
    assert docker.calls[1] == tuple(lab.entrance_argv(config))
    assert docker.calls[2] == ("exec", lab.ENTRANCE, "systemctl", "is-system-running", "--wait")
    assert docker.calls[3][:3] == ("exec", lab.ENTRANCE, "sh")  # apt lists, as a real server has


def test_boot_wait_fails_with_the_container_log_and_systemd_state(fake_docker, capsys):
    fake_docker({("exec",): ("starting\n", 1), ("logs",): ("Welcome to Debian\n", 0)})
    with pytest.raises(lab.LabError) as caught:
        lab.wait_systemd("parrotpark-lab-entrance", seconds=0.5)
    assert str(caught.value) == "parrotpark-lab-entrance did not boot within 0s (systemd says 'starting')"
    assert "Welcome to Debian" in capsys.readouterr().err


def test_fake_that_never_answers_fails_with_its_log(fake_docker, monkeypatch, capsys):
    docker = fake_docker({("container", "inspect"): ("", 1), ("logs",): ("Traceback: bad key\n", 0)})
    monkeypatch.setattr(lab, "fake_answers", lambda config: False)
    monkeypatch.setattr(lab, "FAKESCW_TIMEOUT", 0)
    with pytest.raises(lab.LabError) as caught:
        lab.start_fakescw(lab.LabConfig())
    assert str(caught.value) == "the fake Scaleway API did not answer within 0s"
    assert docker.calls[1] == tuple(lab.fakescw_argv(lab.LabConfig()))
    assert "Traceback: bad key" in capsys.readouterr().err


# --- site.yml -----------------------------------------------------------------
def test_gpu_gateway_layout_needs_the_mongo_container(fake_docker):
    fake_docker({("container", "inspect", lab.MONGO): ("", 1), ("inspect", "-f"): ("172.18.0.6\n", 0)})
    with pytest.raises(lab.LabError) as caught:
        lab.site_environ(lab.LabConfig(layout="gpu-gateway"), {})
    assert str(caught.value) == "parrotpark-lab-mongo is not running (scripts/lab.sh up starts it)"


@pytest.mark.parametrize("layout", ["default", "gpu-gateway"])
def test_every_layout_needs_the_object_storage(fake_docker, layout):
    fake_docker({("container", "inspect", lab.S3): ("", 1)})
    with pytest.raises(lab.LabError) as caught:
        lab.site_environ(lab.LabConfig(layout=layout), {})
    assert str(caught.value) == "parrotpark-lab-s3 is not running (scripts/lab.sh up starts it)"


def test_gpu_gateway_layout_passes_the_mongo_and_s3_addresses(fake_docker):
    address = '{{(index .NetworkSettings.Networks "parrotpark-lab").IPAddress}}'
    docker = fake_docker(
        {("inspect", "-f", address, lab.MONGO): ("172.18.0.5\n", 0), ("inspect", "-f"): ("172.18.0.6\n", 0)}
    )
    env = lab.site_environ(lab.LabConfig(layout="gpu-gateway"), {"PARROTPARK_EXTRA_CA_BUNDLE": "/ca.pem"})
    assert env["PARROTPARK_LAB_MONGO_ADDRESS"] == "172.18.0.5"
    assert env["PARROTPARK_LAB_S3_ADDRESS"] == "172.18.0.6"
    assert env["PARROTPARK_EXTRA_CA_BUNDLE"] == "/ca.pem"  # a bundle named is kept
    assert ("inspect", "-f", address, "parrotpark-lab-s3") in docker.calls
    assert docker.calls[-1] == ("inspect", "-f", address, "parrotpark-lab-mongo")


def test_default_layout_trusts_the_hosts_bundle(fake_docker, tmp_path, monkeypatch):
    docker = fake_docker({("inspect", "-f"): ("172.18.0.6\n", 0)})
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(lab, "HOST_CA_BUNDLE", bundle)
    env = lab.site_environ(lab.LabConfig(https_port=9443), {"PARROTPARK_LAB_TIMERS": "off"})
    assert env == {
        "PARROTPARK_LAB_TIMERS": "off",
        "PARROTPARK_EXTRA_CA_BUNDLE": str(bundle),
        "PARROTPARK_LAB_HTTPS_PORT": "9443",  # the inventory's parrotpark_https_port
        "PARROTPARK_LAB_S3_ADDRESS": "172.18.0.6",  # the backups' bucket
    }
    assert [call[-1] for call in docker.calls] == ["parrotpark-lab-s3", "parrotpark-lab-s3"]


def test_object_storage_that_never_answers_fails_with_its_log(fake_docker, monkeypatch, capsys):
    docker = fake_docker(
        {("container", "inspect"): ("", 1), ("exec", lab.S3): ("", 1), ("logs",): ("versitygw: bad flag\n", 0)}
    )
    monkeypatch.setattr(lab, "S3_TIMEOUT", 0)
    with pytest.raises(lab.LabError) as caught:
        lab.start_s3()
    assert str(caught.value) == "the lab's object storage parrotpark-lab-s3 did not answer within 0s"
    run = docker.calls[1]
    assert run == tuple(lab.s3_argv())
    # The bucket and keys are the inventory's (backup_s3_*), on the lab network only: no port published.
    assert f"LAB_S3_BUCKETS={lab.S3_BUCKET}" in run and f"ROOT_ACCESS_KEY_ID={lab.S3_ACCESS_KEY}" in run
    assert "-p" not in run and ("--network", lab.NETWORK) == run[run.index("--network") : run.index("--network") + 2]
    assert "versitygw: bad flag" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["gpu-gateway", "seeds"])
def test_site_arguments_go_to_ansible_playbook(monkeypatch, layout):
    seen = {}
    monkeypatch.setattr(lab, "site", lambda config, args: seen.update(config=config, args=args) or 3)
    monkeypatch.setenv("PARROTPARK_LAB_LAYOUT", layout)
    assert lab.main(["site", "--check", "-e", "x=1", "--diff"]) == 3
    assert seen == {"config": lab.LabConfig(layout="gpu-gateway"), "args": ["--check", "-e", "x=1", "--diff"]}
    assert seen["config"].inventory == Path("inventories/lab-gpu-gateway")


def test_summary_names_the_sites_and_how_to_run_site_again():
    default = lab.summary(lab.LabConfig(https_port=9443), "s3cret")
    assert "https://chat.lab.parrotpark.test:9443\n" in default
    assert "https://api.lab.parrotpark.test:9443/v1   key: inventories/lab/secrets/litellm-master-key" in default
    assert "user: lab   password: s3cret" in default
    assert "Layout: default (LiteLLM and LibreChat on the entrance)." in default
    assert "Run site.yml again: scripts/lab.sh site " in default
    gpu_gateway = lab.summary(lab.LabConfig(layout="gpu-gateway"), "s3cret")
    assert "key: inventories/lab-gpu-gateway/secrets/litellm-master-key" in gpu_gateway
    assert "Layout: gpu-gateway (LiteLLM and LibreChat on the GPU server)." in gpu_gateway
    assert "Run site.yml again: PARROTPARK_LAB_LAYOUT=gpu-gateway scripts/lab.sh site " in gpu_gateway


# --- what is left -------------------------------------------------------------
def test_leftovers_parsing_keeps_the_registry_cache_and_counts_each_once():
    left = lab.parse_leftovers(
        containers="parrotpark-lab-entrance\nparrotpark-lab-srv-1a2b3c4d\n",
        servers="parrotpark-lab-srv-1a2b3c4d\n",
        volumes="parrotpark-lab-registry-cache\nparrotpark-lab-srv-1a2b3c4d-docker\n",
        networks="parrotpark-lab\n",
    )
    assert left == [
        "container parrotpark-lab-entrance",
        "container parrotpark-lab-srv-1a2b3c4d",
        "volume parrotpark-lab-srv-1a2b3c4d-docker",
        "network parrotpark-lab",
    ]
    assert lab.parse_leftovers("", "", "parrotpark-lab-registry-cache\n", "") == []


def test_leftovers_command_lists_what_is_left_and_fails(fake_docker, capsys):
    docker = fake_docker({("volume", "ls"): ("parrotpark-lab-registry-cache\nparrotpark-lab-mongo-data\n", 0)})
    assert lab.main(["leftovers"]) == 1
    assert capsys.readouterr().out == "make lab-down left these behind:\nvolume parrotpark-lab-mongo-data\n"
    assert docker.calls == [
        (
            "ps",
            "-a",
            "--format",
            '{{.Names}} {{.Label "parrotpark.molecule"}}',
            "--filter",
            "label=parrotpark.lab=true",
        ),
        ("ps", "-a", "--format", "{{.Names}}", "--filter", "label=parrotpark.fakescw.server"),
        ("volume", "ls", "--format", "{{.Name}}", "--filter", "name=parrotpark-lab"),
        ("network", "ls", "--format", "{{.Name}}", "--filter", "name=parrotpark-lab"),
    ]


def test_leftovers_command_passes_when_only_the_cache_is_left(fake_docker, capsys):
    fake_docker({("volume", "ls"): ("parrotpark-lab-registry-cache\n", 0)})
    assert lab.main(["leftovers"]) == 0
    assert "nothing of the lab is left" in capsys.readouterr().out


def test_leftovers_except_registry_skips_only_the_registry_and_its_network():
    listings = {
        "containers": "parrotpark-lab-registry\nparrotpark-lab-entrance\n",
        "servers": "",
        "volumes": "parrotpark-lab-registry-cache\n",
        "networks": "parrotpark-lab\n",
    }
    assert lab.parse_leftovers(**listings, except_registry=True) == ["container parrotpark-lab-entrance"]
    assert lab.parse_leftovers(**listings) == [
        "container parrotpark-lab-registry",
        "container parrotpark-lab-entrance",
        "network parrotpark-lab",
    ]


def test_down_keep_registry_leaves_the_registry_and_network(fake_docker, monkeypatch, capsys):
    cleaned, removed_dirs = [], []
    monkeypatch.setattr(lab.factory.Factory, "clean", lambda self, images: cleaned.append(images))
    # not the checkout's secrets: a lab may be running from it
    monkeypatch.setattr(lab.shutil, "rmtree", lambda path, ignore_errors=False: removed_dirs.append(path))
    docker = fake_docker({})
    assert lab.main(["down", "--keep-registry"]) == 0
    assert cleaned == []
    removed = [call for call in docker.calls if call[:2] == ("container", "rm")]
    assert removed and all("parrotpark-lab-registry" not in call for call in removed)
    printed = capsys.readouterr()
    assert "kept the registry parrotpark-lab-registry" in printed.out + printed.err
    assert removed_dirs == [lab.ROOT / inventory / "secrets" for inventory in lab.INVENTORIES.values()]
    assert lab.main(["down"]) == 0
    assert cleaned == [False]


def test_down_refuses_images_with_keep_registry(fake_docker, capsys):
    fake_docker({})
    assert lab.main(["down", "--images", "--keep-registry"]) == 1
    assert "--keep-registry" in capsys.readouterr().err


def test_leftovers_leave_out_molecule_platforms_that_run_lab_images(fake_docker, capsys):
    # A molecule platform inherits the lab label from its image; it is not the lab's.
    listing = "pp-telegraf-default true\nparrotpark-lab-entrance \n"
    fake_docker({("ps", "-a", "--format", '{{.Names}} {{.Label "parrotpark.molecule"}}'): (listing, 0)})
    assert lab.main(["leftovers"]) == 1
    assert capsys.readouterr().out == "make lab-down left these behind:\ncontainer parrotpark-lab-entrance\n"
