"""Pilot tests of the TUI: every key, every dialog, and the bad inputs issue 5 lists.

The engine is the in-memory FakeClient (tests/ui_fixtures.py); each test asserts exactly which
HumanEvents the UI submitted. Waits poll a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import pilot_until
from textual.pilot import Pilot
from textual.widgets import Input, Static
from ui_fixtures import (
    AGENT_POINTS,
    APPROVAL_POINTS,
    APPROVAL_STORY,
    LOGS_STORY,
    NOW,
    SHELL_POINTS,
    UNCERTAIN_SEND,
    FakeClient,
    approval_decided,
    frozen_clock,
    many_panes,
    pane_removed,
    sample_snapshot,
    with_state,
)

from sentry_tui.model import (
    Approve,
    Cancel,
    Dismiss,
    PaneState,
    Pause,
    Reject,
    Resume,
    Retry,
    SendText,
    Skip,
)
from sentry_tui.ui import view
from sentry_tui.ui.app import SentryApp
from sentry_tui.ui.screens import ApproveScreen, ConfirmScreen, HelpScreen, RejectScreen, SendScreen
from sentry_tui.ui.widgets import ApprovalList, PaneList

DEADLINE = 15.0


class RecordingApp(SentryApp):
    """SentryApp that also keeps every notification's text, for assertions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.toasts: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.toasts.append(str(message))
        super().notify(message, *args, **kwargs)


Scenario = Callable[[RecordingApp, Pilot, FakeClient], Awaitable[None]]


def until(
    pilot: Pilot, predicate: Callable[[], object], timeout: float = DEADLINE
) -> Awaitable[None]:
    return pilot_until(pilot, predicate, timeout)


def drive(
    scenario: Scenario,
    client: FakeClient | None = None,
    size: tuple[int, int] = (120, 40),
    **kwargs: Any,
) -> FakeClient:
    client = client or FakeClient()
    app = RecordingApp(client, clock=frozen_clock, refresh_s=0.05, **kwargs)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.snap is not None and app.selected_key is not None)
            await pilot.pause()
            await scenario(app, pilot, client)

    asyncio.run(main())
    return client


def text_of(static: Static) -> str:
    return str(static.content)


def events_of(client: FakeClient, n: int) -> Callable[[], bool]:
    return lambda: len(client.events) >= n


# --------------------------------------------------------------------------------------------
# Layout


def test_phone_size_shows_every_window_and_both_approvals_without_scrolling() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        panes = app.query_one("#panes", PaneList)
        approvals = app.query_one("#approvals", ApprovalList)
        assert app.screen.has_class("-compact")
        assert panes.option_count == 2 + 6  # 2 sessions, 6 panes in 5 windows
        assert approvals.option_count == 2
        for widget in (panes, approvals):
            assert widget.max_scroll_y == 0, f"{widget.id} would need scrolling"
            assert widget.region.bottom <= app.size.height - 1  # above the key bar
            assert widget.region.height >= widget.virtual_size.height

    drive(scenario, size=(60, 24))


def test_header_counts_and_badges() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        header = text_of(app.query_one("#header", Static))
        assert "6 panes" in header
        assert "?1 waiting" in header and "✗1 failed" in header and "◆2 approvals" in header
        assert "tmux read 1s" in header
        panes = app.query_one("#panes", PaneList)
        rows = [str(panes.get_option_at_index(i).prompt) for i in range(panes.option_count)]
        assert any("logs" in r and "✗ fail" in r for r in rows)
        assert any("agent" in r and "? wait" in r and "predeploy" in r for r in rows)
        assert "⚠ points: role 'db'" in text_of(app.query_one("#warnings", Static))

    drive(scenario)


# --------------------------------------------------------------------------------------------
# Approve and reject


def test_approve_then_confirm_sends_exactly_one_approve() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab")  # the approvals queue; its oldest is highlighted
        assert app.focused is app.query_one("#approvals")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        body = text_of(app.screen.query_one("#dialog-body", Static))
        assert "storyapp › deploy" in body and "npm run deploy -- --prod" in body
        assert "3f2a9c1e07b4" in body and "Tests: 42 passed" in body
        assert client.events == []
        await pilot.press("y", "y")
        await until(pilot, events_of(client, 1))
        await until(pilot, lambda: not isinstance(app.screen, ApproveScreen))
        await pilot.pause(0.1)
        assert client.events == [Approve(by="ui", approval_id=APPROVAL_STORY)]

    drive(scenario)


def test_approve_from_pane_list_picks_that_projects_approval_and_n_cancels() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        assert app.selected_key == AGENT_POINTS
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        assert app.screen.approval_id == APPROVAL_POINTS  # type: ignore[attr-defined]
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ApproveScreen))
        assert client.events == []

    drive(scenario)


def test_reject_with_a_reason() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab", "x")
        await until(pilot, lambda: isinstance(app.screen, RejectScreen))
        await pilot.press(*"not today", "enter")
        await until(pilot, events_of(client, 1))
        assert client.events == [Reject(by="ui", approval_id=APPROVAL_STORY, reason="not today")]

    drive(scenario)


def test_reject_without_reason_and_escape_keeps_it_pending() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab", "j", "x")
        await until(pilot, lambda: isinstance(app.screen, RejectScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RejectScreen))
        assert client.events == []
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, RejectScreen))
        await pilot.press("enter")
        await until(pilot, events_of(client, 1))
        assert client.events == [Reject(by="ui", approval_id=APPROVAL_POINTS, reason="")]

    drive(scenario)


def test_approval_decided_elsewhere_while_its_dialog_is_open() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab", "a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        dialog = app.screen
        client.change(lambda s: approval_decided(s, APPROVAL_STORY, "approved", "cli"))
        await until(
            pilot, lambda: "was approved by cli" in text_of(dialog.query_one("#dialog-body"))
        )
        await pilot.press("y")  # too late: the dialog no longer answers
        await until(pilot, lambda: not isinstance(app.screen, ApproveScreen))
        assert any("was approved by cli" in t for t in app.toasts)
        assert client.events == []
        # the queue now shows only the other approval, and the UI keeps working
        await until(pilot, lambda: app.query_one("#approvals", ApprovalList).option_count == 1)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        assert app.screen.approval_id == APPROVAL_POINTS  # type: ignore[attr-defined]

    drive(scenario)


# --------------------------------------------------------------------------------------------
# Typing into a pane


def test_send_text_asks_with_target_and_exact_text() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, SendScreen))
        await pilot.press(*"yes  please", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        body = text_of(app.screen.query_one("#dialog-body", Static))
        assert "points:agent.0" in body and "⟨yes  please⟩" in body and "codex" in body
        assert client.events == []
        await pilot.press("y")
        await until(pilot, events_of(client, 1))
        assert client.events == [SendText(by="ui", pane=AGENT_POINTS, text="yes  please")]

    drive(scenario)


def test_empty_send_is_refused_with_a_message() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, SendScreen))
        await pilot.press("enter")
        await pilot.press(*"   ", "enter")
        await until(pilot, lambda: "Empty text" in text_of(app.screen.query_one("#send-error")))
        assert isinstance(app.screen, SendScreen)
        assert any("Empty text" in t for t in app.toasts)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SendScreen))
        assert client.events == []

    drive(scenario)


# --------------------------------------------------------------------------------------------
# Stages, runs, uncertain sends, pause


def test_retry_and_skip_the_selected_stage() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("r")
        await until(pilot, events_of(client, 1))
        await pilot.press("s")
        await until(pilot, events_of(client, 2))
        assert client.events == [
            Retry(by="ui", project="points", stage="predeploy"),
            Skip(by="ui", project="points", stage="predeploy"),
        ]

    drive(scenario)


def test_retry_and_skip_need_a_pane_with_a_run() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("j", "j")  # points:shell.1 plays no role
        await until(pilot, lambda: app.selected_key != AGENT_POINTS)
        await pilot.press("r", "s", "c")
        await until(pilot, lambda: sum("No stage selected" in t for t in app.toasts) == 3)
        assert client.events == []

    drive(scenario)


def test_uncertain_send_retry_of_its_stage_and_dismiss() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab", "tab")
        assert app.focused is app.query_one("#attention")
        await pilot.press("r")
        await until(pilot, events_of(client, 1))
        await pilot.press("d")
        await until(pilot, events_of(client, 2))
        assert client.events == [
            Retry(by="ui", project="points", stage="build"),
            Dismiss(by="ui", action_id=UNCERTAIN_SEND),
        ]

    drive(scenario)


def test_uncertain_manual_send_is_resent_only_after_confirmation() -> None:
    snap = sample_snapshot()
    entry = dataclasses.replace(
        snap.state.journal[UNCERTAIN_SEND], project="", stage="", text="make clean"
    )
    client = FakeClient(with_state(snap, journal={UNCERTAIN_SEND: entry}))

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("tab", "tab", "r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "⟨make clean⟩" in text_of(app.screen.query_one("#dialog-body", Static))
        await pilot.press("y")
        await until(pilot, events_of(client, 1))
        assert client.events == [SendText(by="ui", pane=SHELL_POINTS, text="make clean")]

    drive(scenario, client)


def test_cancel_run_asks_first() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "points" in text_of(app.screen.query_one("#dialog-body", Static))
        await pilot.press("y")
        await until(pilot, events_of(client, 1))
        assert client.events == [Cancel(by="ui", project="points")]

    drive(scenario)


def test_pause_then_resume() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("p")
        await until(pilot, events_of(client, 1))
        client.change(lambda s: with_state(s, paused=True))
        await until(pilot, lambda: "PAUSED" in text_of(app.query_one("#header", Static)))
        assert "p resume" in text_of(app.query_one("#keys", Static))
        await pilot.press("p")
        await until(pilot, events_of(client, 2))
        assert client.events == [Pause(by="ui"), Resume(by="ui")]

    drive(scenario)


# --------------------------------------------------------------------------------------------
# Navigation, filter, help, jump, quit


def test_j_k_and_arrows_move_the_selection() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        assert app.selected_key == AGENT_POINTS
        await pilot.press("j")
        await until(pilot, lambda: app.selected_key == SHELL_POINTS)
        assert "points:shell.0" in text_of(app.query_one("#detail-head", Static))
        await pilot.press("k")
        await until(pilot, lambda: app.selected_key == AGENT_POINTS)
        await pilot.press("down", "down", "down")  # the session heading is skipped
        await until(pilot, lambda: app.selected_key == sample_keys()[3])
        await pilot.press("up")
        await until(pilot, lambda: app.selected_key == sample_keys()[2])

    drive(scenario)


def sample_keys() -> list[str]:
    rows = view.pane_rows(sample_snapshot())
    return [r.key for r in rows if isinstance(r, view.PaneRow)]


def test_filter_by_state_and_escape_clears_it() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        panes = app.query_one("#panes", PaneList)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"fail")
        await until(pilot, lambda: panes.option_count == 2)  # storyapp heading + logs
        await until(pilot, lambda: app.selected_key == LOGS_STORY)
        await pilot.press("enter")
        assert app.focused is panes
        assert "filter: fail" in text_of(app.query_one("#panes-title", Static))
        await pilot.press("escape")
        await until(pilot, lambda: panes.option_count == 8)

    drive(scenario)


def test_filter_by_name() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        panes = app.query_one("#panes", PaneList)
        await pilot.press("slash", *"storyapp agent")
        await until(pilot, lambda: panes.option_count == 2)

    drive(scenario)


def test_help_screen_opens_and_closes() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))

    drive(scenario)


def test_enter_jumps_to_the_pane_and_shows_the_answer() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: client.jumps == [AGENT_POINTS])
        await until(pilot, lambda: "switched to points:agent.0" in app.toasts)

    drive(scenario)


def test_quit_asks_first_when_hosting() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "pipelines pause" in text_of(app.screen.query_one("#dialog-body", Static))
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.is_running
        await pilot.press("q", "y")
        await until(pilot, lambda: app._exit)

    drive(scenario, hosting=True)


def test_quit_of_a_view_does_not_ask() -> None:
    client = FakeClient(sample_snapshot(hosting=False))

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("q")
        await until(pilot, lambda: app._exit)
        assert not isinstance(app.screen, ConfirmScreen)

    drive(scenario, client)


def test_every_binding_is_in_the_command_palette() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        callbacks = {
            getattr(c.callback, "__name__", "") for c in app.get_system_commands(app.screen)
        }
        for binding in app.BINDINGS:
            if binding.id in {"clear-filter", "quit"}:
                continue
            assert f"action_{binding.action}" in callbacks, binding.action
        assert {c.title for c in app.get_system_commands(app.screen)} >= {"Approve", "Quit"}

    drive(scenario)


# --------------------------------------------------------------------------------------------
# Bad input


def test_selected_pane_vanishing_is_reported_and_selection_moves() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        assert app.selected_key == AGENT_POINTS
        client.change(lambda s: pane_removed(s, AGENT_POINTS))
        await until(pilot, lambda: app.selected_key not in (None, AGENT_POINTS))
        assert any("points:agent.0 disappeared" in t for t in app.toasts)
        assert app.query_one("#panes", PaneList).option_count == 7
        await pilot.press("i")  # still works, on the new selection
        await until(pilot, lambda: isinstance(app.screen, SendScreen))

    drive(scenario)


def test_gone_pane_state_is_shown() -> None:
    snap = sample_snapshot()
    pane = dataclasses.replace(snap.state.panes[AGENT_POINTS], state=PaneState.GONE)
    client = FakeClient(with_state(snap, panes={**snap.state.panes, AGENT_POINTS: pane}))

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        assert "⊘ gone" in text_of(app.query_one("#detail-head", Static))

    drive(scenario, client)


def test_resize_to_40x15_keeps_working() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.resize_terminal(40, 15)
        await until(pilot, lambda: app.size == (40, 15) and app.screen.has_class("-compact"))
        await pilot.press("j", "k", "tab", "a")
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))
        await pilot.press("y")
        await until(pilot, events_of(client, 1))
        assert client.events == [Approve(by="ui", approval_id=APPROVAL_STORY)]
        await pilot.resize_terminal(120, 40)
        await until(pilot, lambda: app.screen.has_class("-wide"))

    drive(scenario)


def test_engine_stopping_shows_a_banner_and_keys_still_work() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        banner = app.query_one("#banner", Static)
        assert not banner.display
        client.change(lambda s: dataclasses.replace(s, engine_alive=False, hosting=False))
        await until(pilot, lambda: banner.display and "ENGINE STOPPED" in text_of(banner))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))

    drive(scenario)


def test_unreadable_engine_state_is_shown_and_recovers() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        banner = app.query_one("#banner", Static)
        client.fail_with = OSError("snapshot.json: permission denied")
        await until(pilot, lambda: banner.display and "permission denied" in text_of(banner))
        client.fail_with = None
        await until(pilot, lambda: not banner.display)

    drive(scenario)


def test_in_memory_snapshot_is_read_without_a_worker_and_its_failure_shown() -> None:
    """The hosted engine's snapshot is read on the UI thread: same renders, same banner."""
    client = FakeClient()
    client.snapshot_in_memory = True

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        calls = client.snapshot_calls
        await until(pilot, lambda: client.snapshot_calls >= calls + 3)
        assert client.snapshot_threads == {threading.get_ident()}  # the app's own thread
        banner = app.query_one("#banner", Static)
        client.fail_with = OSError("engine state unreadable")
        await until(pilot, lambda: banner.display and "unreadable" in text_of(banner))
        client.fail_with = None
        await until(pilot, lambda: not banner.display)

    drive(scenario, client)


def test_polling_pauses_under_a_dialog_that_does_not_watch() -> None:
    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.2)
        calls = client.snapshot_calls
        await pilot.pause(0.3)
        assert client.snapshot_calls <= calls + 1  # one may have been in flight

    drive(scenario)


def test_fifty_panes_render_and_answer_keys() -> None:
    client = FakeClient(many_panes(50))

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        panes = app.query_one("#panes", PaneList)
        assert panes.option_count == 55  # 5 sessions + 50 panes
        first = app.selected_key
        await pilot.press(*["j"] * 10)
        await until(pilot, lambda: app.selected_key != first)
        await pilot.press("a")  # approvals are still there
        await until(pilot, lambda: isinstance(app.screen, ApproveScreen))

    drive(scenario, client)


# --------------------------------------------------------------------------------------------
# View model (no Textual)


def test_fmt_duration() -> None:
    assert [view.fmt_duration(s) for s in (0, 7, 192, 3900, 2 * 86400 + 3 * 3600, -5)] == [
        "0s",
        "7s",
        "3m12s",
        "1h05m",
        "2d03h",
        "0s",
    ]
    assert view.fmt_duration(None) == ""


def test_safe_ansi_keeps_colour_and_drops_everything_else() -> None:
    raw = "\x1b[31mred\x1b[0m \x1b]0;title\x07\x1b[2J\x1b[10;1Hx\x07y\x1b]8;;http://e\x1b\\z"
    assert view.safe_ansi(raw) == "\x1b[31mred\x1b[0m xyz"


def test_counts_and_queues() -> None:
    snap = sample_snapshot()
    c = view.counts(snap)
    assert (c.panes, c.waiting, c.failed, c.approvals, c.uncertain) == (6, 1, 1, 2, 1)
    assert [a.approval_id for a in view.pending_approvals(snap)] == [
        APPROVAL_STORY,
        APPROVAL_POINTS,
    ]
    assert view.visible("a\tb\x1b") == "a\\tb\\x1b"


def test_pane_rows_group_by_session_in_tmux_order() -> None:
    rows = view.pane_rows(sample_snapshot())
    names = [r.session if isinstance(r, view.SessionRow) else r.name for r in rows]
    assert names == [
        "points", "agent", "shell.0", "shell.1", "storyapp", "agent", "shell", "logs"
    ]  # fmt: skip
    assert view.pane_rows(sample_snapshot(), "wait")[1].key == AGENT_POINTS


def test_fixture_clock_is_frozen() -> None:
    assert frozen_clock() == NOW == sample_snapshot().now


@pytest.mark.parametrize("module", ["sentry_tui.ui.app", "sentry_tui.ui.view"])
def test_ui_never_imports_tmux_store_or_network(module: str) -> None:
    code = f"import sys, {module}; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"libtmux", "tinydb", "requests"} & {m.split(".")[0] for m in eval(out.stdout)}


def test_rows_on_screen_follow_cursor_moves_and_state_changes() -> None:
    """Rows are re-rendered one at a time (not the whole list): none may stay stale."""

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        panes = app.query_one("#panes", PaneList)

        def shown(y: int) -> str:
            return panes.render_line(y).text

        assert shown(1).startswith("▸ agent") and shown(2).startswith("  shell.0")
        await pilot.press("j")
        await pilot.pause()
        assert shown(1).startswith("  agent") and shown(2).startswith("▸ shell.0")
        await pilot.press("k")
        await pilot.pause()
        assert shown(1).startswith("▸ agent") and shown(2).startswith("  shell.0")

        snap = client.current
        old = snap.state.panes[SHELL_POINTS]
        new = PaneState.DONE if old.state == PaneState.FAILED else PaneState.FAILED
        pane = dataclasses.replace(old, state=new)
        client.set(with_state(snap, panes={**snap.state.panes, SHELL_POINTS: pane}))
        word = view.badge(new)
        await until(pilot, lambda: word in shown(2))
        assert shown(2).startswith("  shell.0")

    drive(scenario)


def test_detail_head_repaints_for_what_it_shows_and_grows_with_it() -> None:
    """The head shows no last line: a new one must not repaint it (that was four redraws
    and four screen layouts a second for a busy pane). A reason adds a line: it must grow."""

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        head = app.query_one("#detail-head", Static)
        key = app.selected_key
        assert key is not None
        drawn, height = head.content, head.size.height

        def change(**fields: object) -> None:
            snap = client.current
            pane = dataclasses.replace(snap.state.panes[key], **fields)
            client.set(with_state(snap, panes={**snap.state.panes, key: pane}))

        old = client.current.state.panes[key]
        change(last_line=old.last_line + " and more")
        await until(pilot, lambda: app.snap is client.current)
        await pilot.pause()
        assert head.content is drawn

        change(reason="" if old.reason else "asked to confirm a command")
        grown = height - 1 if old.reason else height + 1
        await until(pilot, lambda: head.size.height == grown)
        assert ("why:" in text_of(head)) is not bool(old.reason)

    drive(scenario)


def test_no_color_keeps_states_apart_by_symbol_and_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    async def scenario(app: RecordingApp, pilot: Pilot, client: FakeClient) -> None:
        assert app.no_color
        panes = app.query_one("#panes", PaneList)
        rows = [str(panes.get_option_at_index(i).prompt) for i in range(panes.option_count)]
        assert rows[1].startswith("▸ agent")  # the cursor shows without colour
        for word in ("? wait", "· idle", "● busy", "✓ done", "✗ fail"):
            assert any(word in r for r in rows), word

    drive(scenario)
