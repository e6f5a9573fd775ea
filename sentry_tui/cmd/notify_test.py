"""`sentry-tui notify-test`: one test message to each configured channel, each answer shown.

Synchronous and without retries, so what it prints is what each service said just now.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sentry_tui.config import default_config_dir
from sentry_tui.model import Notify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notify-test",
        help="send a test notification to each configured channel",
        description="Send one test message to each channel configured in config.yaml and the "
        "environment (SENTRY_WECOM_WEBHOOK, SENTRY_SERVERCHAN_KEY, SENTRY_WEBHOOK_URL or "
        "secrets.env), and print each service's answer. Exits 1 if any channel failed.",
    )
    p.add_argument("--config-dir", metavar="DIR", help="config directory (default: XDG config)")
    p.add_argument(
        "--channel", action="append", default=[], metavar="NAME", help="only this channel"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentry_tui.notify import channels_from_env_and_config, send_now

    config_dir = Path(args.config_dir) if args.config_dir else default_config_dir()
    channels = channels_from_env_and_config(config_dir, os.environ)
    if args.channel:
        channels = [c for c in channels if c.name in args.channel]
    if not channels:
        print(
            "no channels configured: set SENTRY_WECOM_WEBHOOK, SENTRY_SERVERCHAN_KEY or "
            "SENTRY_WEBHOOK_URL (environment or secrets.env)"
        )
        return 1
    now = time.time()
    n = Notify(
        event="test",
        title="sentry-tui test notification",
        body=f"If you can read this, notifications from {os.uname().nodename} reach you.",
        since=now,
    )
    failed = 0
    for channel in channels:
        ok, answer = send_now(channel, n, now=now)
        failed += not ok
        print(f"{channel.name}: {answer if ok else 'FAILED: ' + answer}")
    return 1 if failed else 0
