"""Detector profiles against screens the real agent CLIs showed (tests/screens/README.md),
plus the debounce rules. Pure: no tmux, time is passed in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_tui.detect import (
    PROFILES,
    Detector,
    bottom,
    guess_profile,
    judge,
    profile_for,
)
from sentry_tui.model import PaneState

SCREENS = Path(__file__).parent / "screens"
CASES = sorted(p for p in SCREENS.glob("*/*.txt"))


def _expected(path: Path) -> PaneState:
    return PaneState(re.match(r"[a-z]+", path.stem).group(0))  # type: ignore[union-attr]


def _settle(profile_name: str, screen: str) -> PaneState:
    """The state a detector reaches on this screen once it has been shown long enough."""
    det = Detector(PROFILES[profile_name], idle_after_s=1.5)
    det.observe(screen, now=100.0)
    det.tick(now=102.0)
    return det.state


def test_there_are_captured_screens_for_every_agent() -> None:
    agents = {p.parent.name for p in CASES}
    assert {"claude", "codex", "gemini", "shell"} <= agents
    for agent in ("claude", "codex", "gemini"):
        states = {_expected(p) for p in CASES if p.parent.name == agent}
        assert {PaneState.WAITING, PaneState.BUSY, PaneState.IDLE} <= states, agent


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_captured_screen(path: Path) -> None:
    screen = path.read_text(encoding="utf-8")
    assert _settle(path.parent.name, screen) == _expected(path)


@pytest.mark.parametrize(
    "path",
    [p for p in CASES if _expected(p) in (PaneState.WAITING, PaneState.BUSY)],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_waiting_and_busy_are_seen_at_once(path: Path) -> None:
    """No debounce for a human-needed prompt or an explicit spinner: the first screen says it."""
    det = Detector(PROFILES[path.parent.name])
    change = det.observe(path.read_text(encoding="utf-8"), now=0.0)
    assert change is not None and change[0] == _expected(path)
    assert path.parent.name in change[1]  # the reason names the profile and its rule


def test_old_question_scrolled_up_is_not_waiting() -> None:
    screen = "Continue? [y/N] y\n" + "\n".join(f"line {i}" for i in range(30)) + "\nuser@nas:~$ "
    assert _settle("shell", screen) == PaneState.IDLE


def test_agent_screen_rules_read_only_the_bottom() -> None:
    """A real finished Claude Code turn, with an old dialog above and a quoted error in tool
    output: still done."""
    done = (SCREENS / "claude" / "done-3.txt").read_text(encoding="utf-8")
    old_dialog = " Do you want to proceed?\n ❯ 1. Yes\n Esc to cancel · Tab to amend\n" + "x\n" * 12
    assert _settle("claude", old_dialog + done) == PaneState.DONE
    quoted = done.replace(
        "● Done: the file",
        "● Bash(cat log)\n  ⎿  API Error: 401 · Please run /login\n● Done: the file",
    )
    assert "⎿  API Error" in quoted
    assert _settle("claude", quoted) == PaneState.DONE
    banner = done.replace(
        "● Done: the file sentry-out.txt exists now.", "API Error: 401 · Please run /login"
    )
    assert _settle("claude", banner) == PaneState.FAILED


def test_spinner_pause_is_not_idle_and_changing_screen_is_busy() -> None:
    det = Detector(PROFILES["shell"], idle_after_s=1.5)
    assert det.observe("$ make\ncc -c a.c", 0.0) is None  # one screen: no verdict yet
    assert det.observe("$ make\ncc -c a.c\ncc -c b.c", 0.4) == (
        PaneState.BUSY,
        "shell busy: screen changing",
    )
    assert det.tick(1.0) is None  # a pause shorter than the debounce changes nothing
    assert det.observe("$ make\ncc -c a.c\ncc -c b.c\n$ ", 1.2) is None
    assert det.tick(2.6) is None  # 1.4 s after the last change: still busy
    assert det.tick(2.8) == (PaneState.IDLE, 'shell idle: /[$#%>❯»➜λ]\\s*\\Z/ on "$"')
    assert det.state is PaneState.IDLE


def test_failed_shell_command_and_recovery() -> None:
    det = Detector(PROFILES["shell"], idle_after_s=1.0)
    det.observe("$ ls /nope\nls: cannot access '/nope': No such file or directory\n$ ", 0.0)
    assert det.tick(1.0) is not None and det.state is PaneState.FAILED
    det.observe(
        "$ ls /nope\nls: cannot access '/nope': No such file or directory\n$ ls\na b\nc d\n$ ", 2.0
    )
    assert det.state is PaneState.BUSY
    det.tick(3.0)
    assert det.state is PaneState.IDLE


def test_agent_turn_busy_then_done() -> None:
    busy = (SCREENS / "claude" / "busy-1.txt").read_text()
    done = (SCREENS / "claude" / "done-2.txt").read_text()
    det = Detector(PROFILES["claude"], idle_after_s=1.5)
    assert det.observe(busy, 0.0) is not None and det.state is PaneState.BUSY
    assert det.observe(done, 5.0) is None  # changed: still busy until it settles
    assert det.tick(6.0) is None
    change = det.tick(6.5)
    assert change is not None and change[0] is PaneState.DONE


def test_no_screen_no_verdict() -> None:
    assert Detector(PROFILES["claude"]).tick(10.0) is None


def test_ansi_is_stripped_before_matching() -> None:
    screen = "\x1b[1mDo you want to proceed?\x1b[0m\n \x1b[36m❯ 1. Yes\x1b[0m\n Esc to cancel"
    assert judge(PROFILES["claude"], screen, stable=False) is not None
    assert bottom("a\n\n\nb\n\n", 5) == "a\nb"


def test_profile_for_merges_extra_regexes() -> None:
    prof = profile_for("shell", {"waiting": ["^Deploy to prod\\?"], "done": "^ALL GOOD$"})
    assert prof.waiting[0].pattern == "^Deploy to prod\\?"
    assert len(prof.waiting) == len(PROFILES["shell"].waiting) + 1
    assert _settle_with(prof, "Deploy to prod? type it:") == PaneState.WAITING
    assert _settle_with(prof, "checks\nALL GOOD\n$ ") == PaneState.DONE
    assert _settle_with(prof, "ALL GOOD\nstill running") == PaneState.BUSY  # no prompt yet
    assert profile_for("claude") is PROFILES["claude"]


def _settle_with(prof: object, screen: str) -> PaneState:
    det = Detector(prof, idle_after_s=1.0)  # type: ignore[arg-type]
    det.observe(screen, 0.0)
    det.tick(5.0)
    return det.state


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("vim", None, "unknown profile 'vim'"),
        ("shell", {"sleepy": ["x"]}, "unknown state 'sleepy'"),
        ("shell", {"waiting": ["("]}, "bad waiting regex '('"),
    ],
)
def test_profile_for_errors_are_one_line(name: str, extra: dict | None, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        profile_for(name, extra)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("command", "profile"),
    [
        ("claude", "claude"),
        ("codex", "codex"),
        ("gemini", "gemini"),
        ("node /usr/lib/node_modules/@openai/codex/bin/codex.js", "codex"),
        ("node /usr/local/lib/node_modules/@google/gemini-cli/bundle/gemini.js", "gemini"),
        ("/opt/claude-code/bin/claude.exe --resume", "claude"),
        ("node", "shell"),
        ("bash", "shell"),
        ("zsh", "shell"),
        ("vim codex-notes.md", "shell"),
    ],
)
def test_guess_profile(command: str, profile: str) -> None:
    assert guess_profile(command) == profile


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(PROFILES)),
    screens=st.lists(st.text(max_size=300), min_size=1, max_size=5),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=5, max_size=5),
)
def test_detector_never_raises_and_reports_only_changes(
    name: str, screens: list[str], gaps: list[float]
) -> None:
    det = Detector(PROFILES[name])
    now = 0.0
    for screen, gap in zip(screens, gaps, strict=False):
        before = det.state
        change = det.observe(screen, now)
        assert change is None or change[0] != before
        now += gap
        before = det.state
        change = det.tick(now)
        assert change is None or (change[0] != before and change[0] is det.state)
