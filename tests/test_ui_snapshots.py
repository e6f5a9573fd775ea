"""SVG snapshots of the TUI (pytest-textual-snapshot) with a frozen clock.

Regenerate after an intended change: ``pytest tests/test_ui_snapshots.py --snapshot-update``,
then look at the report before committing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from ui_fixtures import FakeClient, frozen_clock

from sentry_tui.ui.app import SentryApp
from sentry_tui.ui.screens import ApproveScreen, HelpScreen

SIZES = [(120, 40), (60, 24)]


def make_app() -> SentryApp:
    return SentryApp(FakeClient(), clock=frozen_clock, refresh_s=0.05)


async def _until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def loaded(app: SentryApp, *keys: str, screen: type | None = None) -> Callable[[Pilot], Any]:
    async def run_before(pilot: Pilot) -> None:
        await _until(pilot, lambda: app.snap is not None and app.selected_key is not None)
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        if screen is not None:
            await _until(pilot, lambda: isinstance(app.screen, screen))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_view(snap_compare: Any, size: tuple[int, int]) -> None:
    app = make_app()
    assert snap_compare(app, terminal_size=size, run_before=loaded(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_approval_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    app = make_app()
    before = loaded(app, "tab", "a", screen=ApproveScreen)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app = make_app()
    before = loaded(app, "question_mark", screen=HelpScreen)
    assert snap_compare(app, terminal_size=size, run_before=before)
