"""The TUI driving a real engine on a real private tmux server (issue 5).

tests/test_ui.py covers every key against an in-memory client; these prove the same keys move
a real pipeline: the approval dialog releases the deploy into the shell pane, a rejection
carries its reason into the engine's state, `i` types into a real pane, `p` holds sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import pilot_until, wait_for
from live_engine import live_runner, pending, shell_lines, start_agent, start_shell
from textual.pilot import Pilot

from sentry_tui.model import RunStatus
from sentry_tui.runner import Runner
from sentry_tui.ui.app import SentryApp
from sentry_tui.ui.screens import ApproveScreen, ConfirmScreen, RejectScreen, SendScreen

pytestmark = pytest.mark.tmux
DEADLINE = 40.0


def until(
    pilot: Pilot, predicate: Callable[[], object], timeout: float = DEADLINE
) -> Awaitable[None]:
    return pilot_until(pilot, predicate, timeout)


def drive_live(
    server: Any,
    tmp_path: Path,
    scenario: Callable[[SentryApp, Pilot, Runner], Awaitable[None]],
    *,
    with_agent: bool = True,
) -> Runner:
    session = start_shell(server, tmp_path)
    with live_runner(server, tmp_path) as runner:
        wait_for(lambda: runner.snapshot().last_read is not None, timeout=20)
        if with_agent:
            start_agent(session, tmp_path)
        app = SentryApp(runner, refresh_s=0.05)

        async def main() -> None:
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: app.snap is not None)
                await scenario(app, pilot, runner)

        asyncio.run(main())
        return runner


def test_approve_key_releases_the_deploy_into_the_real_pane(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario(app: SentryApp, pilot: Pilot, runner: Runner) -> None:
        await until(pilot, lambda: pending(runner) and app.snap and app.snap.state.approvals)
        await pilot.press("tab", "a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        assert shell_lines(tmp_path)[-1].count("flaky_test.sh") == 1  # no deploy yet
        await pilot.press("y")
        await until(
            pilot, lambda: runner.snapshot().state.runs["e2e"].status is RunStatus.SUCCEEDED
        )

    drive_live(server, tmp_path, scenario)
    sent = shell_lines(tmp_path)
    assert [s for s in sent if "echo deployed-" in s] == [sent[-1]]


def test_reject_with_a_reason_reaches_the_engine(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario(app: SentryApp, pilot: Pilot, runner: Runner) -> None:
        await until(pilot, lambda: pending(runner) and app.snap and app.snap.state.approvals)
        (approval,) = pending(runner)
        await pilot.press("tab", "x")
        await until(pilot, lambda: isinstance(app.screen, RejectScreen))
        await pilot.press(*"not on a friday", "enter")
        decided = lambda: runner.snapshot().state.approvals[approval.approval_id]  # noqa: E731
        await until(pilot, lambda: decided().status == "rejected")
        assert decided().reason == "not on a friday"

    drive_live(server, tmp_path, scenario)
    assert not any("echo deployed-" in s for s in shell_lines(tmp_path))


def test_i_types_the_confirmed_text_into_the_selected_real_pane(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario(app: SentryApp, pilot: Pilot, runner: Runner) -> None:
        shell_key = wait_for(
            lambda: next(
                (k for k, p in runner.snapshot().state.panes.items() if p.info.window == "shell"),
                None,
            )
        )
        await until(pilot, lambda: app.selected_key is not None)
        app.selected_key = shell_key
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, SendScreen))
        await pilot.press(*"echo hi; echo $HOME", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "echo hi; echo $HOME" in shell_lines(tmp_path))

    drive_live(server, tmp_path, scenario, with_agent=False)
    assert shell_lines(tmp_path) == ["echo hi; echo $HOME"]


def test_p_pauses_and_resumes_all_sending(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario(app: SentryApp, pilot: Pilot, runner: Runner) -> None:
        await pilot.press("p")
        await until(pilot, lambda: runner.snapshot().state.paused)
        start_agent(server.sessions.get(session_name="proj"), tmp_path)
        await until(pilot, lambda: "paused" in held_reason(runner))
        assert shell_lines(tmp_path) == []  # the test command is held while paused
        await pilot.press("p")
        await until(pilot, lambda: len(shell_lines(tmp_path)) >= 1)

    drive_live(server, tmp_path, scenario, with_agent=False)


def held_reason(runner: Runner) -> str:
    """Why the e2e run's current stage is not sending, if it is held."""
    run = runner.snapshot().state.runs.get("e2e")
    if run is None or run.current >= len(run.stages):
        return ""
    return run.stages[run.current].waiting_for
