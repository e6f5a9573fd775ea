"""`sentry-tui status`: what needs you, in 60 columns (or `--json` for scripts)."""

from __future__ import annotations

import argparse
import json

from sentry_tui.cli import common_options
from sentry_tui.cmd._common import paths_from, policy_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", parents=[common_options()], help="print waiting panes, failures and approvals"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentry_tui import summary
    from sentry_tui.remote import current_snapshot

    snap = current_snapshot(paths_from(args), policy_from(args))
    if args.json:
        print(json.dumps(summary.as_json(snap), ensure_ascii=False, indent=1))
    else:
        print(summary.render(snap))
    return 0
