"""`sentry-tui init [DIR]`: write a first policy from what the project declares."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a policy from the project's scripts, targets and workflows",
        description=(
            "Read package.json scripts, Makefile targets, pyproject.toml task runners, tox envs, "
            "nox sessions and .github/workflows in DIR (nothing is run) and write a commented "
            "policy: stages install, lint, test, build, deploy, with an approval before deploy "
            "and the deploy workflow awaited. Written to DIR/.sentry-tui.yaml unless --output."
        ),
    )
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="project (default: .)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--output", "-o", metavar="PATH", help="where to write the policy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentry_tui.project_init import init, scan, summary_lines

    root = Path(args.directory)
    target, _ = init(root, force=args.force, output=Path(args.output) if args.output else None)
    for line in summary_lines(scan(root)) or ["no stages found: the policy only watches panes"]:
        print(f"  {line}")
    print(f"wrote {target}")
    print(f"next: read it, then `sentry-tui check {target}`")
    return 0
