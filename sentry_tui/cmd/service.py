"""`sentry-tui service install|uninstall`: run the headless engine at boot (systemd --user).

With the engine in a service, `sentry-tui` and `sentry-tui up` open as views of it; pipelines
keep moving while no UI is open.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from sentry_tui.cli import common_options

UNIT = "sentry-tui.service"
MARK = "# written by `sentry-tui service install`"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "service",
        parents=[common_options()],
        help="install or remove a systemd user unit for the engine",
    )
    p.add_argument("action", choices=["install", "uninstall", "show"])
    p.add_argument("--unit-dir", help="where user units live (default: ~/.config/systemd/user)")
    p.add_argument("--no-enable", action="store_true", help="write the unit only")
    p.set_defaults(func=run)


def unit_dir(args: argparse.Namespace) -> Path:
    if args.unit_dir:
        return Path(args.unit_dir).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def unit_text(args: argparse.Namespace) -> str:
    exe = shutil.which("sentry-tui")
    argv = [exe] if exe else [sys.executable, "-m", "sentry_tui"]
    argv.append("watch")
    for flag, value in (
        ("--socket", args.socket),
        ("--socket-path", args.socket_path),
        ("--state-dir", args.state_dir),
    ):
        if value:
            argv += [flag, str(Path(value).expanduser()) if flag != "--socket" else value]
    for policy in args.policy:
        argv += ["--policy", str(Path(policy).expanduser().resolve())]
    return "\n".join(
        [
            MARK,
            "[Unit]",
            "Description=sentry-tui engine: watches tmux panes and drives pipelines",
            "",
            "[Service]",
            f"ExecStart={shlex.join(argv)}",
            "Restart=on-failure",
            "RestartSec=5",
            # tmux's default socket lives under TMUX_TMPDIR or /tmp/tmux-UID
            f"Environment=PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    path = unit_dir(args) / UNIT
    if args.action == "show":
        print(unit_text(args), end="")
        return 0
    systemctl = shutil.which("systemctl")
    if args.action == "install":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit_text(args))
        print(f"wrote {path}")
        if systemctl and not args.no_enable:
            subprocess.run([systemctl, "--user", "daemon-reload"], check=False)
            done = subprocess.run([systemctl, "--user", "enable", "--now", UNIT], check=False)
            if done.returncode == 0:
                print(f"enabled and started {UNIT}; open the UI with `sentry-tui up`")
                return 0
        print(f"enable it with: systemctl --user enable --now {UNIT}")
        return 0
    if not path.exists():
        print(f"no unit at {path}; nothing to remove")
        return 0
    if MARK not in path.read_text():
        print(f"{path} was not written by sentry-tui; leaving it alone", file=sys.stderr)
        return 1
    if systemctl and not args.no_enable:
        subprocess.run([systemctl, "--user", "disable", "--now", UNIT], check=False)
    path.unlink()
    print(f"removed {path}")
    return 0
