"""The shell profile on real programs in real panes of a private tmux server.

The screen is read with libtmux's capture_pane (the watcher is tested on its own); the
detector gets the real clock, so the debounce is exercised as it runs in the watcher.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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

    def __init__(self, pane: Pane, idle_after_s: float = 0.8, profile: str = "shell") -> None:
        self.pane = pane
        self.detector = Detector(PROFILES[profile], idle_after_s=idle_after_s)
        self.seen: list[tuple[PaneState, str]] = []

    def step(self) -> PaneState:
        change = self.detector.observe("\n".join(self.pane.capture_pane()), time.monotonic())
        if change is not None:
            self.seen.append(change)
        return self.detector.state

    def until(self, state: PaneState, timeout: float = 15.0) -> None:
        try:
            wait_for(lambda: self.step() is state, timeout=timeout, interval=0.1)
        except AssertionError:
            screen = "\n".join(self.pane.capture_pane())
            raise AssertionError(
                f"never {state.value}; went through {self.seen}; screen:\n{screen}"
            ) from None


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
    wait_for(lambda: "step 10:" in "\n".join(pane.capture_pane()), timeout=20)
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


# -- the real agent CLIs, driven by the loopback stand-in for their APIs ----------------------
#
# Run where the CLIs are installed (`npm install -g @anthropic-ai/claude-code @openai/codex
# @google/gemini-cli`, or point SENTRY_CLAUDE_BIN / SENTRY_CODEX_BIN / SENTRY_GEMINI_BIN at
# them); skipped elsewhere. They walk each agent through its first-run dialogs, a permission
# prompt and a finished turn, and check the detector's verdict on the live screen at each step.

FAKE_LLM = Path(__file__).parent / "fake_llm" / "server.py"


def _agent_bin(name: str) -> str:
    found = os.environ.get(f"SENTRY_{name.upper()}_BIN") or shutil.which(name)
    if not found:
        pytest.skip(f"{name} CLI not installed (set SENTRY_{name.upper()}_BIN)")
    return found


@pytest.fixture
def fake_llm(tmp_path: Path) -> Iterator[int]:
    """The stand-in API on a free loopback port; its working directory is the project."""
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_LLM), "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _agent_pane(session: Session, name: str, env: dict[str, str], argv: str, cwd: Path) -> Pane:
    base = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    words = " ".join(shlex.quote(f"{k}={v}") for k, v in {**base, **env}.items())
    window = session.new_window(
        window_name=name,
        window_shell=f"cd {shlex.quote(str(cwd))} && env -i {words} {argv}",
        attach=False,
    )
    window.resize(width=100, height=30)
    pane = window.active_pane
    assert pane is not None
    return pane


def _type(pane: Pane, text: str) -> None:
    """Type, and press Enter once the text shows: an agent drops an Enter that arrives in
    the same read as the text (it takes the burst for a paste)."""
    pane.send_keys(text, enter=False, literal=True)
    _wait_text(pane, text, timeout=10)
    pane.enter()


def _screen(pane: Pane) -> str:
    return "\n".join(pane.capture_pane())


def _answer(pane: Pane, key: str, dialog: str, then: str, timeout: float = 30.0) -> None:
    """Press ``key`` to answer the dialog showing ``dialog`` and wait for ``then`` to show.
    The key is pressed again while the dialog is still there after a few seconds: a dialog
    drawn a moment before its key handler is ready drops the key (seen with Gemini CLI)."""
    deadline = time.monotonic() + timeout
    pane.send_keys(key, enter=False)
    while True:
        try:
            wait_for(lambda: then in _screen(pane), timeout=3, interval=0.1)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{key} on {dialog!r} never led to {then!r}:\n{_screen(pane)}"
                ) from None
            if dialog in _screen(pane):
                pane.send_keys(key, enter=False)


def _wait_text(pane: Pane, text: str, timeout: float = 30.0) -> None:
    try:
        wait_for(lambda: text in _screen(pane), timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"never showed {text!r}; screen:\n{_screen(pane)}") from None


@pytest.mark.slow
def test_live_claude_code(session: Session, fake_llm: int, tmp_path: Path) -> None:
    binary = _agent_bin("claude")
    home = tmp_path / "home"
    home.mkdir()
    # onboarding checks api.anthropic.com, which a loopback API cannot answer
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    env = {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_llm}",
        "ANTHROPIC_API_KEY": "sk-ant-fake-0123456789abcdef",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    pane = _agent_pane(session, "claude", env, shlex.quote(binary), tmp_path)
    watch = Watch(pane, idle_after_s=1.0, profile="claude")
    _wait_text(pane, "Yes, I trust this folder")
    watch.until(PaneState.WAITING)
    _answer(pane, "Enter", "Yes, I trust this folder", "Do you want to use this API key?")
    watch.until(PaneState.WAITING)
    pane.send_keys("Up", enter=False)
    _wait_text(pane, "❯ 1. Yes", timeout=10)
    _answer(pane, "Enter", "Do you want to use this API key?", "? for shortcuts")
    watch.until(PaneState.IDLE, timeout=30)
    _type(pane, "RUNCMD please")
    _wait_text(pane, "Do you want to proceed?", timeout=30)
    watch.until(PaneState.WAITING)
    _answer(pane, "Enter", "Do you want to proceed?", "Done: the file")  # 1. Yes
    watch.until(PaneState.DONE, timeout=30)
    assert (tmp_path / "sentry-out.txt").exists()


@pytest.mark.slow
def test_live_codex(session: Session, fake_llm: int, tmp_path: Path) -> None:
    binary = _agent_bin("codex")
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "gpt-5-codex"\nmodel_provider = "fake"\napproval_policy = "on-request"\n'
        'sandbox_mode = "read-only"\n\n[model_providers.fake]\nname = "fake"\n'
        f'base_url = "http://127.0.0.1:{fake_llm}/v1"\nwire_api = "responses"\n'
        'env_key = "FAKE_API_KEY"\n'
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {"HOME": str(home), "FAKE_API_KEY": "fake"}
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env["PATH"] = f"{node_dir}:/usr/bin:/bin"
    pane = _agent_pane(session, "codex", env, shlex.quote(binary), tmp_path)
    watch = Watch(pane, idle_after_s=1.0, profile="codex")
    _wait_text(pane, "Trust this folder?")
    watch.until(PaneState.WAITING)
    _answer(pane, "Enter", "Trust this folder?", "Ask Codex to do anything")
    watch.until(PaneState.IDLE, timeout=30)
    _type(pane, "RUNCMD please")
    _wait_text(pane, "Would you like to run", timeout=30)
    watch.until(PaneState.WAITING)
    _answer(pane, "y", "Would you like to run", "Done: the file")
    watch.until(PaneState.DONE, timeout=30)
    assert (tmp_path / "sentry-out.txt").exists()


@pytest.mark.slow
def test_live_gemini(session: Session, fake_llm: int, tmp_path: Path) -> None:
    binary = _agent_bin("gemini")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "GEMINI_API_KEY": "fake-gemini-key",
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{fake_llm}",
    }
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env["PATH"] = f"{node_dir}:/usr/bin:/bin"
    pane = _agent_pane(session, "gemini", env, shlex.quote(binary), tmp_path)
    watch = Watch(pane, idle_after_s=1.0, profile="gemini")
    _wait_text(pane, "Do you trust the files", timeout=40)
    watch.until(PaneState.WAITING)
    _answer(pane, "Enter", "Do you trust the files", "How would you like to authenticate")
    watch.until(PaneState.WAITING)
    if os.environ.get("SENTRY_CAPTURE_DIR"):  # how tests/screens/gemini/waiting-signin-2 was made
        Path(os.environ["SENTRY_CAPTURE_DIR"], "gemini-signin.txt").write_text(_screen(pane))
    # "Use Gemini API Key" is preselected because the key is in the environment
    _answer(pane, "Enter", "How would you like to authenticate", "Enter Gemini API Key")
    watch.until(PaneState.WAITING)
    # the key from the environment, prefilled
    _answer(pane, "Enter", "Enter Gemini API Key", "Type your message")
    watch.until(PaneState.IDLE, timeout=30)
    _type(pane, "RUNCMD please")
    _wait_text(pane, "Allow execution of", timeout=30)
    watch.until(PaneState.WAITING)
    _answer(pane, "Enter", "Allow execution of", "Done: the file")  # 1. Allow once
    watch.until(PaneState.DONE, timeout=30)
    assert (tmp_path / "sentry-out.txt").exists()
