"""Command line: ``python -m sandbox org …`` writes the ground truth; ``python -m sandbox serve …`` runs
every registered simulator until SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from types import FrameType

from sandbox.clock import SimClock
from sandbox.org import Organisation
from sandbox.registry import build_apps
from sandbox.server import SimServer

log = logging.getLogger("sandbox")


def _org_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="last day of the history, YYYY-MM-DD (default: yesterday UTC)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    org = sub.add_parser("org", help="write the synthetic organisation's ground truth and Sheet CSVs")
    _org_args(org)
    org.add_argument("--out", type=Path, required=True, help="folder for ground_truth.json, CSVs and sheet/")
    serve = sub.add_parser("serve", help="serve every registered simulator on loopback")
    _org_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port-file", type=Path, default=None, help="write {app: url} JSON here once listening"
    )
    serve.add_argument("--apps", default=None, help="comma-separated subset of apps (default: all)")
    serve.add_argument("--now", default=None, help="fix the simulators' clock to this UTC instant (ISO 8601)")
    return parser


def cmd_org(args: argparse.Namespace) -> int:
    org = Organisation.generate(seed=args.seed, people=args.people, days=args.days, end=args.end)
    written = org.export_ground_truth(args.out) + org.export_sheet_csv(args.out / "sheet")
    sys.stdout.write(
        f"organisation {org.digest()} {org.start}..{org.end}: {len(written)} files in {args.out}\n"
    )
    return 0


def _write_port_file(path: Path, urls: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(urls, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # readers never see a half-written file


def cmd_serve(args: argparse.Namespace) -> int:
    org = Organisation.generate(seed=args.seed, people=args.people, days=args.days, end=args.end)
    clock = SimClock(args.now)
    names = [n.strip() for n in args.apps.split(",") if n.strip()] if args.apps else None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    servers = [SimServer(app, host=args.host) for app in build_apps(org, clock, names).values()]
    try:
        for server in servers:
            server.start()
            sys.stdout.write(f"{server.name} {server.url}\n")
        sys.stdout.flush()
        if args.port_file:
            _write_port_file(args.port_file, {s.name: s.url for s in servers})
        while not stop.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = _parser().parse_args(argv)
    return cmd_org(args) if args.command == "org" else cmd_serve(args)
