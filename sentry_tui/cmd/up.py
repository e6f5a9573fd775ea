"""`sentry-tui up`: open the UI in a tmux window named `sentry`, creating it only once."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

from sentry_tui.cli import common_options
from sentry_tui.errors import UserError

WINDOW = "sentry"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        parents=[common_options()],
        help="open (or reuse) a `sentry` tmux window running the UI and switch to it",
    )
    p.set_defaults(func=run)


def ui_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "sentry_tui", "ui"]
    for flag, value in (
        ("--socket", args.socket),
        ("--socket-path", args.socket_path),
        ("--state-dir", args.state_dir),
    ):
        if value:
            argv += [flag, value]
    for policy in args.policy:
        argv += ["--policy", policy]
    return argv


def run(args: argparse.Namespace) -> int:
    base = ["tmux"]
    if args.socket:
        base += ["-L", args.socket]
    if args.socket_path:
        base += ["-S", args.socket_path]

    def tmux(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *a], capture_output=True, text=True)

    command = shlex.join(ui_argv(args))
    inside = bool(os.environ.get("TMUX")) and not (args.socket or args.socket_path)
    if inside:
        session = tmux("display-message", "-p", "#{session_name}").stdout.strip()
    else:
        session = WINDOW
        if tmux("has-session", "-t", f"={session}").returncode != 0:
            made = tmux("new-session", "-d", "-s", session, "-n", WINDOW, command)
            if made.returncode != 0:
                raise UserError(f"cannot start tmux session {session!r}: {made.stderr.strip()}")
    windows = tmux("list-windows", "-t", f"={session}", "-F", "#{window_name}").stdout.split()
    if WINDOW not in windows:
        made = tmux("new-window", "-t", f"={session}:", "-n", WINDOW, command)
        if made.returncode != 0:
            raise UserError(f"cannot open the {WINDOW} window: {made.stderr.strip()}")
    target = f"={session}:{WINDOW}"
    if inside:
        tmux("switch-client", "-t", target)
        return 0
    tmux("select-window", "-t", target)
    if not sys.stdin.isatty():
        print(
            f"the UI runs in tmux window {session}:{WINDOW}; attach with `tmux attach -t {session}`"
        )
        return 0
    return subprocess.call([*base, "attach-session", "-t", target])
