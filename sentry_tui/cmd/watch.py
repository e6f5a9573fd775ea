"""`sentry-tui watch`: the engine without a screen (systemd, scripts, tests)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from sentry_tui.cli import common_options
from sentry_tui.cmd._common import build_runner, log_to_file, paths_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch",
        parents=[common_options()],
        help="run the engine headless and print its events",
        description="Run the engine without the UI. Prints one line per event.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--dry-run", action="store_true", help="print sends instead of typing them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log_to_file(paths_from(args))  # stdout is the event stream; problems are events too
    printer = print_json if args.json else print_human
    serve_headless(build_runner(args, on_event=printer))
    return 0


def serve_headless(runner: Any, seconds: float = 0.0) -> None:
    """Run the engine until a signal (or ``seconds``), then save and release the lock."""
    stop = threading.Event()
    stop_on_signals(stop)
    timer = threading.Timer(seconds, stop.set) if seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    runner.open()
    try:
        runner.run(stop)
    finally:
        if timer is not None:
            timer.cancel()
        runner.close()


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGHUP end the loop cleanly so state is saved and the lock released."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)


def print_json(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_human(line: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(line.get("ts", time.time())))
    where = f"{line.get('session', '')}:{line.get('window', '')}" if line.get("pane") else ""
    skip = {"ts", "kind", "pane", "pane_key", "session", "window"}
    rest = " ".join(f"{k}={v}" for k, v in line.items() if k not in skip and v not in ("", None))
    sys.stdout.write(f"{stamp} {where:<20} {line.get('kind', '')} {rest[:300]}\n")
    sys.stdout.flush()
