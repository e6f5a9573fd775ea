"""`sentry-tui check FILE...`: validate policies offline, one line per project or one error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sentry_tui.config import default_config_dir
from sentry_tui.errors import PolicyError
from sentry_tui.policy import load_policy, summary, user_policy_paths


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="validate policy files offline",
        description=(
            "Validate policy files without touching tmux or the network. Prints one line per "
            "project, or the first error as FILE:LINE: key 'a.b[1].c': what was expected, and "
            "exits 1. With no FILE, checks the policies sentry-tui would load."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="policy YAML files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = [Path(f) for f in args.files] or user_policy_paths(default_config_dir())
    try:
        policy = load_policy(paths)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not policy.projects:
        print(f"{', '.join(policy.sources)}: valid, but defines no projects")
    for project in policy.projects:
        print(summary(project))
    return 0
