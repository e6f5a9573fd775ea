"""Agents running under a runtime (Codex and Gemini CLI under node) are recognised by the
foreground process's full command line, read on a real tmux pane."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for

from sentry_tui import detect
from sentry_tui.model import PaneInfo, PaneRef
from sentry_tui.runner import foreground_command

pytestmark = pytest.mark.tmux


def test_runtime_pane_is_profiled_by_its_script(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
    script.parent.mkdir(parents=True)
    script.write_text("import time\ntime.sleep(60)\n")  # python standing in for node
    pane = session.new_window(window_shell=f"python3 {script}").active_pane

    def info() -> PaneInfo | None:
        pane.refresh()
        if pane.pane_current_command != "python3":
            return None
        return PaneInfo(
            PaneRef("s", pane.pane_id or ""), "s", "w",
            command="python3", pid=int(pane.pane_pid or 0),
        )  # fmt: skip

    found = wait_for(info, timeout=15)
    line = foreground_command(found)
    assert str(script) in line
    assert detect.guess_profile(line) == "codex"
    assert detect.guess_profile(found.command) == "shell"  # the short name alone says nothing
