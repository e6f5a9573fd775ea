"""`sentry-tui wrap`: run a command between signed START/END markers (see sentry_tui.wrap)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wrap",
        help="run a command between signed start/end markers",
        description=(
            "Run CMD in this terminal, in the foreground, exactly as without the wrapper, and "
            "print a signed START marker before it and an END marker (exit status, duration) "
            "after it. Exits with CMD's status (128+N when a signal N ended it)."
        ),
        usage="sentry-tui wrap [--stage NAME] [--project NAME] [--run ID] [--state-dir DIR] "
        "-- CMD [ARGS...]",
    )
    p.add_argument("--stage", metavar="NAME", help="pipeline stage the markers name")
    p.add_argument("--project", metavar="NAME", help="project the markers name")
    p.add_argument("--run", metavar="RUN_ID", help="pipeline run id the markers name")
    p.add_argument("--state-dir", metavar="DIR", help="state dir holding the signing key")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentry_tui.wrap import main

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    return main(cmd, stage=args.stage, project=args.project, run=args.run, state_dir=args.state_dir)
