"""`sentry-tui hook` (run by agents; fast, always exits 0) and `sentry-tui hooks` (set-up)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser(
        "hook",
        help="record an agent hook event (run by the agent, not by you)",
        description=(
            "Called by an agent's hook: writes a small signed event into the state dir's "
            "inbox and runs the chained command (--chain), if any. Always exits 0 quickly."
        ),
        usage="sentry-tui hook [--state-dir DIR] AGENT [EVENT] [--chain JSON] [ARGS...]",
    )
    h.add_argument("--state-dir", metavar="DIR", help=argparse.SUPPRESS)
    h.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    h.set_defaults(func=run_hook)

    p = sub.add_parser(
        "hooks",
        help="install or remove sentry-tui's hooks in Claude Code or Codex CLI",
        description=(
            "Add (or remove) the hooks that report Claude Code's Stop, Notification and "
            "PermissionRequest events, or Codex CLI's notify, to sentry-tui. Shows a diff; "
            "safe to run twice; uninstall removes exactly what install added."
        ),
    )
    hs = p.add_subparsers(dest="hooks_action", metavar="ACTION", required=True)
    for action in ("install", "uninstall"):
        a = hs.add_parser(action, help=f"{action} the hooks for one agent")
        a.add_argument("agent", choices=["claude", "codex"])
        a.add_argument(
            "--settings",
            "--config",
            metavar="PATH",
            help="the agent's settings file (default: ~/.claude/settings.json, "
            "$CODEX_HOME/config.toml or ~/.codex/config.toml)",
        )
        a.add_argument("--dry-run", action="store_true", help="show the diff, change nothing")
        if action == "install":
            a.add_argument(
                "--state-dir", metavar="DIR", help="state dir the hook writes to (default: XDG)"
            )
        a.set_defaults(func=run_hooks, hooks_action=action)


def run_hook(args: argparse.Namespace) -> int:
    from sentry_tui.hooks import run_hook as hook

    argv = list(args.argv)
    if args.state_dir:
        argv = ["--state-dir", args.state_dir, *argv]
    return hook(argv)


def run_hooks(args: argparse.Namespace) -> int:
    from sentry_tui.hooks import manage

    path = Path(args.settings).expanduser() if args.settings else None
    return manage(
        args.hooks_action,
        args.agent,
        path,
        dry_run=args.dry_run,
        state_dir=getattr(args, "state_dir", None),
    )
