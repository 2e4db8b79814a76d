"""Run the fake: ``PYTHONPATH=lab python -m fakescw --port 8383``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .app import FakeScaleway


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
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeScaleway(
        args.host,
        args.port,
        secret_keys=args.secret_key or None,
        organization_id=args.organization_id,
        project_id=args.project_id,
        transition_seconds=args.transition_seconds,
        latency=args.latency,
    )

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
