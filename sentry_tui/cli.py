"""`sentry-tui` entry point.

Each subcommand lives in ``sentry_tui/cmd/<module>.py`` exposing ``register(subparsers)``,
which adds its parser(s) with ``set_defaults(func=run)``. Only the module of the command being
run is imported, so `sentry-tui hook` (called by agents on every turn) never pays for Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sentry_tui import __version__
from sentry_tui.errors import UserError

# command name -> module under sentry_tui.cmd that registers it
COMMANDS: dict[str, str] = {
    "ui": "ui",
    "up": "up",
    "demo": "demo",
    "watch": "watch",
    "status": "status",
    "approve": "human",
    "reject": "human",
    "retry": "human",
    "skip": "human",
    "cancel": "human",
    "start": "human",
    "pause": "human",
    "resume": "human",
    "send": "human",
    "dismiss": "human",
    "wrap": "wrap",
    "hook": "hooks",
    "hooks": "hooks",
    "init": "init",
    "check": "check",
    "serve": "serve",
    "notify-test": "notify_test",
    "service": "service",
}


def common_options() -> argparse.ArgumentParser:
    """Options every engine-facing command shares (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("tmux and state")
    g.add_argument("--socket", "-L", metavar="NAME", help="tmux socket name (tmux -L)")
    g.add_argument("--socket-path", "-S", metavar="PATH", help="tmux socket path (tmux -S)")
    g.add_argument("--state-dir", metavar="DIR", help="state directory (default: XDG state)")
    g.add_argument(
        "--policy", action="append", default=[], metavar="FILE", help="policy file (repeatable)"
    )
    return p


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentry-tui",
        description="Watch agents and jobs in tmux, drive their pipelines, ask a human.",
    )
    parser.add_argument("--version", action="version", version=f"sentry-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [COMMANDS[only]] if only in COMMANDS else sorted(set(COMMANDS.values()))
    for name in dict.fromkeys(modules):
        module = importlib.import_module(f"sentry_tui.cmd.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    if not args_in or (first is None and not {"-h", "--help", "--version"} & set(args_in)):
        args_in = ["ui", *args_in]  # no subcommand: the UI
        first = "ui"
    parser = build_parser(only=first if first in COMMANDS else None)
    args = parser.parse_args(args_in)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        print(f"sentry-tui: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
