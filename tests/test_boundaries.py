"""The pure core must not load the shell's packages (DESIGN.md: pure core, thin adapters)."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "model", "policy", "markers", "detect", "engine", "perceive", "summary",
    "signing", "ansi", "config", "errors", "durations",
]  # fmt: skip
FORBIDDEN = ["libtmux", "textual", "tinydb", "requests", "rich", "urllib3"]


def test_core_imports_no_adapters() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE!r}:\n"
        "    importlib.import_module('sentry_tui.' + m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    leaked = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert leaked == [], f"core modules pulled in adapters: {leaked}"
    assert "sentry_tui.model" in loaded


def test_ui_start_up_loads_no_http_stack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """requests is a fifth of a UI's time to first paint on a slow NAS, and most runs make
    no HTTP call: the notifier and the GitHub poller import it at their first request."""
    code = (
        "import json, sys\n"
        "from sentry_tui import cli\n"
        "from sentry_tui.cmd._common import build_runner\n"
        "import sentry_tui.ui.app\n"
        f"args = cli.build_parser().parse_args(['ui', '--socket', 'nope-{tmp_path.name}',"
        f" '--state-dir', {str(tmp_path / 'state')!r}])\n"
        "build_runner(args)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert "textual" in loaded
    assert not loaded & {"requests", "urllib3"}
