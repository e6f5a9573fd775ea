"""What every engine-facing command needs: paths, the policy, and a wired runner."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from sentry_tui.config import Paths, default_config_dir, default_state_dir
from sentry_tui.errors import UserError
from sentry_tui.model import Policy


def paths_from(args: argparse.Namespace) -> Paths:
    state = getattr(args, "state_dir", None) or os.environ.get("SENTRY_TUI_STATE_DIR")
    return Paths(Path(state).expanduser() if state else default_state_dir())


def log_to_file(paths: Paths) -> None:
    """The terminal belongs to the UI or to the event stream: warnings go to a file."""
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.basicConfig(
        filename=paths.log,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def policy_from(args: argparse.Namespace) -> Policy:
    from sentry_tui import policy

    files = [Path(p).expanduser() for p in getattr(args, "policy", None) or []]
    if not files:
        files = policy.user_policy_paths(default_config_dir())
    for f in files:
        if not f.is_file():
            raise UserError(f"policy file not found: {f}")
    return policy.load_policy(files)


def build_runner(args: argparse.Namespace, **options: Any):  # -> runner.Runner
    """A runner with the notifier and GitHub checks the environment configures."""
    from sentry_tui.runner import Runner, RunnerOptions

    paths = paths_from(args)
    opts = RunnerOptions(
        socket_name=getattr(args, "socket", None),
        socket_path=getattr(args, "socket_path", None),
        dry_run=bool(getattr(args, "dry_run", False)),
        **options,
    )
    runner = Runner(policy_from(args), paths, opts)
    runner.notifier = _notifier(paths)
    runner.checks = _checks(runner)
    return runner


def _notifier(paths: Paths) -> Any:
    from sentry_tui import notify

    channels = notify.channels_from_env_and_config(default_config_dir(), os.environ)
    settings = notify.settings_from_config(default_config_dir(), state_dir=paths.state_dir)
    return notify.Notifier(channels, **settings)


def _checks(runner: Any) -> Any:
    from sentry_tui import checks

    return checks.CheckPoller(runner.post, checks.GithubActions.from_env(os.environ))
