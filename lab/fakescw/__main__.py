"""Run the fake: ``PYTHONPATH=lab python -m fakescw --port 8383``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .app import FakeScaleway
from .backend import Backend
from .docker_backend import DEFAULT_IMAGE, DEFAULT_NAME_PREFIX, DockerBackend
from .errors import ApiError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakescw", description="A fake Scaleway API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8383, help="port to bind (default: 8383, 0: any)")
    parser.add_argument(
        "--secret-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only this x-auth-token (repeatable; default: accept any token)",
    )
    parser.add_argument("--organization-id", help="organization of every resource (default: random)")
    parser.add_argument("--project-id", help="the default project, with its security groups (default: random)")
    parser.add_argument("--transition-seconds", type=float, default=0.0, help="duration of starting/stopping")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    docker = parser.add_argument_group("docker backend (--backend docker: every server is a systemd container)")
    parser.add_argument(
        "--backend",
        choices=("null", "docker"),
        default="null",
        help="what backs the servers: nothing (null, default) or a container each (docker)",
    )
    docker.add_argument("--docker-network", help="Docker network of the server containers (required)")
    docker.add_argument(
        "--docker-image", default=DEFAULT_IMAGE, help=f"image of every server (default: {DEFAULT_IMAGE})"
    )
    docker.add_argument(
        "--docker-name-prefix",
        default=DEFAULT_NAME_PREFIX,
        help=f"containers are <prefix>-<first 8 characters of the server id> (default: {DEFAULT_NAME_PREFIX})",
    )
    docker.add_argument(
        "--boot-timeout", type=float, default=60.0, help="seconds a power on waits for systemd (default: 60)"
    )
    args = parser.parse_args(argv)
    if args.backend == "docker" and not args.docker_network:
        parser.error("--backend docker needs --docker-network")

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    backend: Backend | None = None
    if args.backend == "docker":
        backend = DockerBackend(
            args.docker_network,
            args.docker_image,
            name_prefix=args.docker_name_prefix,
            boot_timeout=args.boot_timeout,
        )
    fake = FakeScaleway(
        args.host,
        args.port,
        secret_keys=args.secret_key or None,
        organization_id=args.organization_id,
        project_id=args.project_id,
        transition_seconds=args.transition_seconds,
        latency=args.latency,
        backend=backend,
    )
    if isinstance(backend, DockerBackend):
        # The fake's state is in memory: containers of a previous run back no server now.
        try:
            reaped = backend.reap()
        except ApiError as exc:
            print(f"fakescw: the docker backend does not work: {exc.body['message']}", file=sys.stderr)
            return 1
        print(f"docker backend on network {backend.network}: removed {len(reaped)} orphan(s)", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=fake.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fake.start()
    print(f"fakescw listening on {fake.url}", flush=True)
    print(f"organization {fake.organization_id}, project {fake.project_id}", flush=True)
    fake.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
