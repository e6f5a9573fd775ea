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
