"""`sentry-tui demo`: the whole product on its own private tmux server, no set-up needed."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from sentry_tui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a self-contained demo on a private tmux server",
        description=(
            "Start a private tmux server with scripted agents and jobs, and the UI in its "
            "first window. Quitting the UI stops that server. Your own tmux is not touched."
        ),
    )
    p.add_argument("--headless", action="store_true", help="print the event stream instead")
    p.add_argument("--json", action="store_true", help="with --headless: JSON lines")
    p.add_argument(
        "--seconds", type=float, default=0.0, help="with --headless: stop after this long"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentry_tui import demo

    if not args.headless and not sys.stdin.isatty():
        raise UserError("the demo needs a terminal; try `sentry-tui demo --headless`")
    state_dir = Path(tempfile.mkdtemp(prefix="sentry-demo-state-"))
    try:
        scene = demo.start_scene(ui_state_dir=None if args.headless else state_dir)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise UserError(f"cannot start the demo's tmux server: {exc}") from exc
    try:
        if args.headless:
            return _headless(scene, state_dir, args)
        _exit_on_signals()  # so `finally` stops the demo's server on SIGTERM/SIGHUP too
        env = dict(os.environ)
        env.pop("TMUX", None)  # attach even when called from inside another tmux
        return subprocess.call(
            ["tmux", "-L", scene.socket, "attach-session", "-t", f"{demo.SESSION}:sentry"],
            env=env,
        )
    finally:
        scene.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def _exit_on_signals() -> None:
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def _headless(scene, state_dir: Path, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from sentry_tui import policy
    from sentry_tui.cmd.watch import print_human, print_json, serve_headless
    from sentry_tui.config import Paths
    from sentry_tui.runner import Runner, RunnerOptions

    opts = RunnerOptions(
        socket_name=scene.socket, on_event=print_json if args.json else print_human
    )
    runner = Runner(policy.load_policy([scene.policy]), Paths(state_dir), opts)
    serve_headless(runner, args.seconds)
    return 0
