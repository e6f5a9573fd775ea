"""`sentry-tui serve`: answer signed approve/reject links (off unless config turns links on)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from sentry_tui.cli import common_options
from sentry_tui.config import default_config_dir
from sentry_tui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common_options()],
        help="serve the approve/reject links that notifications carry",
        description="A small HTTP endpoint for signed approve/reject links. A GET only shows a "
        "confirmation page; only its POST decides. Needs `links: {enabled: true, base_url: "
        "...}` in config.yaml. Bound to 127.0.0.1: expose it through a tunnel.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.set_defaults(func=run)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from sentry_tui.cmd._common import paths_from
    from sentry_tui.links import load_key, load_link_config
    from sentry_tui.serve import make_server

    cfg = load_link_config(default_config_dir())
    if not cfg.enabled:
        raise UserError(
            "links are off: add `links: {enabled: true, base_url: https://YOUR-TUNNEL/}` "
            f"to {default_config_dir() / 'config.yaml'}"
        )
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: expected 1-65535")
    paths = paths_from(args)
    key = load_key(paths, os.environ)
    try:
        server = make_server(paths, key, args.host, args.port)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    if not _loopback(args.host):
        print(
            f"warning: listening on {args.host}, not loopback; anyone who can reach it sees "
            "the confirmation pages (tokens still guard every decision)",
            file=sys.stderr,
        )
    print(f"sentry-tui serve: {server.url} (links point at {cfg.base_url}); Ctrl-C stops")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
