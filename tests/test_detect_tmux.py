"""The shell profile on real programs in real panes of a private tmux server.

The screen is read with libtmux's capture_pane (the watcher is tested on its own); the
detector gets the real clock, so the debounce is exercised as it runs in the watcher.
"""

from __future__ import annotations

import time

import pytest
from libtmux import Pane, Session

from sentry_tui.detect import PROFILES, Detector
from sentry_tui.model import PaneState
from tests.conftest import wait_for

pytestmark = pytest.mark.tmux

SHELL = "env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' bash --noprofile --norc"


def _pane(session: Session, name: str) -> Pane:
    window = session.new_window(window_name=name, window_shell=SHELL, attach=False)
    pane = window.active_pane
    assert pane is not None
    wait_for(lambda: any(line.startswith("$") for line in pane.capture_pane()), timeout=15)
    return pane


class Watch:
    """Feeds one pane's screen to a detector and remembers every state it went through."""

    def __init__(self, pane: Pane, idle_after_s: float = 0.8) -> None:
        self.pane = pane
        self.detector = Detector(PROFILES["shell"], idle_after_s=idle_after_s)
        self.seen: list[tuple[PaneState, str]] = []

    def step(self) -> PaneState:
        change = self.detector.observe("\n".join(self.pane.capture_pane()), time.monotonic())
        if change is not None:
            self.seen.append(change)
        return self.detector.state

    def until(self, state: PaneState, timeout: float = 15.0) -> None:
        wait_for(lambda: self.step() is state, timeout=timeout, interval=0.1)


def test_read_prompt_is_waiting(session: Session) -> None:
    pane = _pane(session, "ask")
    watch = Watch(pane)
    pane.send_keys('read -p "Continue? [y/N] " answer', enter=True)
    watch.until(PaneState.WAITING)
    assert "waiting" in watch.seen[-1][1]
    pane.send_keys("y", enter=True)  # answered: back at the prompt
    watch.until(PaneState.IDLE)


def test_progress_loop_is_busy_and_never_idle(session: Session) -> None:
    pane = _pane(session, "loop")
    watch = Watch(pane)
    pane.send_keys(
        'for i in $(seq 1 100); do echo "step $i: compiling module_$i.c"; sleep 0.2; done',
        enter=True,
    )
    watch.until(PaneState.BUSY)
    # keep watching while it prints: the pauses between lines never read as idle
    wait_for(lambda: "step 15:" in "\n".join(pane.capture_pane()), timeout=20)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert watch.step() is PaneState.BUSY, watch.seen
        time.sleep(0.1)
    assert all(state is not PaneState.IDLE for state, _ in watch.seen), watch.seen
    pane.send_keys("C-c", enter=False)
    watch.until(PaneState.IDLE)


def test_prompt_that_stays_is_idle_after_the_debounce(session: Session) -> None:
    pane = _pane(session, "idle")
    watch = Watch(pane, idle_after_s=0.8)
    start = time.monotonic()
    watch.until(PaneState.IDLE)
    assert time.monotonic() - start >= 0.8  # not before the screen held still that long
    assert watch.seen == [(PaneState.IDLE, watch.detector.reason)]


def test_command_ending_with_an_error_is_failed(session: Session) -> None:
    pane = _pane(session, "fail")
    watch = Watch(pane)
    pane.send_keys("ls /nonexistent-sentry-dir", enter=True)
    watch.until(PaneState.FAILED)
    assert "failed" in watch.detector.reason
    pane.send_keys("echo all good", enter=True)  # a later command that works: not failed
    watch.until(PaneState.IDLE)
