"""`sentry-tui` (no subcommand): the TUI, hosting the engine or viewing a running one."""

from __future__ import annotations

import argparse
import os
import threading

from sentry_tui.cli import common_options
from sentry_tui.cmd._common import build_runner, log_to_file, paths_from, policy_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", parents=[common_options()], help="the terminal UI (the default)")
    p.add_argument("--dry-run", action="store_true", help="show sends instead of typing them")
    p.add_argument("--view", action="store_true", help="never host the engine; only view it")
    p.set_defaults(func=run)


def own_pane(args: argparse.Namespace) -> frozenset[str]:
    """Our own pane, when we run inside the server we watch: never watch ourselves."""
    pane = os.environ.get("TMUX_PANE")
    tmux = os.environ.get("TMUX", "")
    if not pane or not tmux:
        return frozenset()
    socket_file = tmux.split(",")[0]
    wanted = args.socket_path or (args.socket or "default")
    same = socket_file == wanted or socket_file.endswith("/" + wanted)
    return frozenset({pane}) if same else frozenset()


def run(args: argparse.Namespace) -> int:
    from sentry_tui import store
    from sentry_tui.remote import RemoteClient
    from sentry_tui.ui.app import SentryApp

    paths = paths_from(args)
    log_to_file(paths)
    policy = policy_from(args)
    if args.view or store.EngineLock(paths).holder() is not None:
        SentryApp(RemoteClient(paths, policy, args.socket, args.socket_path)).run()
        return 0
    runner = build_runner(args, exclude_panes=own_pane(args))
    try:
        runner.open()
    except store.LockHeld:
        SentryApp(RemoteClient(paths, policy, args.socket, args.socket_path)).run()
        return 0
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,), name="engine", daemon=True)
    loop.start()
    try:
        SentryApp(runner).run()
    finally:
        stop.set()
        loop.join(timeout=5)
        runner.close()
    return 0
