"""One engine, many views (DESIGN.md): with `sentry-tui watch` running as its own process,
the TUI opens as a view of it — it renders the published snapshot, its keys travel through the
inbox, and quitting it leaves the engine running. When the engine stops, the view says so."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import pilot_until
from live_engine import shell_lines, start_agent, start_shell, write_policy
from textual.pilot import Pilot

from sentry_tui.config import Paths
from sentry_tui.policy import load_policy
from sentry_tui.remote import RemoteClient
from sentry_tui.ui.app import SentryApp
from sentry_tui.ui.screens import ApproveScreen

pytestmark = pytest.mark.tmux


def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 60) -> Awaitable[None]:
    return pilot_until(pilot, predicate, timeout)


def test_view_approves_through_the_inbox_and_sees_the_engine_stop(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = start_shell(server, tmp_path)
    policy_file = write_policy(tmp_path)
    state = tmp_path / "state"
    engine = subprocess.Popen(
        [sys.executable, "-m", "sentry_tui", "watch", "--socket", server.socket_name,
         "--state-dir", str(state), "--policy", str(policy_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = RemoteClient(Paths(state), load_policy([policy_file]), server.socket_name)
        app = SentryApp(client, refresh_s=0.1)

        def pending() -> list[str]:
            snap = app.snap
            if snap is None:
                return []
            return [a.approval_id for a in snap.state.approvals.values() if a.status == "pending"]

        async def main() -> None:
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: app.snap is not None and app.snap.engine_alive)
                assert app.snap is not None and not app.snap.hosting
                start_agent(session, tmp_path)
                await until(pilot, pending)
                await pilot.press("tab", "a")
                await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
                await pilot.press("y")
                await until(
                    pilot, lambda: any("echo deployed-" in s for s in shell_lines(tmp_path))
                )
                engine.send_signal(signal.SIGTERM)
                engine.wait(timeout=20)
                await until(pilot, lambda: app.snap is not None and not app.snap.engine_alive, 20)
                await pilot.press("q")  # a view quits without asking: no engine to stop

        asyncio.run(main())
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait(timeout=10)
    assert [s for s in shell_lines(tmp_path) if "echo deployed-" in s] != []
