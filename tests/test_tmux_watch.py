"""The watcher on real private tmux servers (``tmux -L sentry-test-<uuid>``, killed after)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentry_tui.model import (
    Event,
    OutputLines,
    PaneAdded,
    PaneGone,
    PaneInfo,
    ScreenChanged,
    ServerDown,
    ServerUp,
)
from sentry_tui.tmux import TmuxError, Watcher, discover, server_identity, stop_private_server
from tests.conftest import wait_for

pytestmark = pytest.mark.tmux

SH = "env PS1='$ ' ENV= sh"  # a shell that starts instantly (no rc files)


class Server:
    def __init__(self) -> None:
        self.name = f"sentry-test-{uuid.uuid4().hex[:10]}"

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-f", "/dev/null", "-L", self.name, *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def kill(self) -> None:
        stop_private_server(self.name)


@pytest.fixture
def srv() -> Iterator[Server]:
    s = Server()
    yield s
    s.kill()


class Seen:
    """Every event a watcher emitted, pumped while waiting."""

    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher
        self.all: list[Event] = []

    def until(self, pred: Callable[[list[Event]], object], timeout: float = 15.0) -> object:
        def check() -> object:
            self.all += self.w.events(0.05)
            return pred(self.all)

        return wait_for(check, timeout)

    def lines(self, pane_id: str | None = None) -> list[tuple[int, str]]:
        out = []
        for e in self.all:
            if isinstance(e, OutputLines) and (pane_id is None or e.ref.pane_id == pane_id):
                out += [(e.seq + i, line) for i, line in enumerate(e.lines)]
        return out

    def texts(self, pane_id: str | None = None) -> list[str]:
        return [t for _, t in self.lines(pane_id)]

    def pane(self, pred: Callable[[PaneInfo], bool]) -> PaneInfo:
        found = self.until(
            lambda ev: next((e.pane for e in ev if isinstance(e, PaneAdded) and pred(e.pane)), None)
        )
        assert isinstance(found, PaneInfo)
        return found


@pytest.fixture
def watch(srv: Server) -> Iterator[Callable[..., tuple[Watcher, Seen]]]:
    started: list[Watcher] = []

    def make(**kw: object) -> tuple[Watcher, Seen]:
        w = Watcher(srv.name, **kw)  # type: ignore[arg-type]
        w.start()
        started.append(w)
        return w, Seen(w)

    yield make
    for w in started:
        w.stop()


def py(code: str) -> str:
    """A pane command running ``code`` with this interpreter (fast start, no shims)."""
    return f"{sys.executable} -c {_sh(code)}"


def _sh(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def test_discovery_fields(srv: Server) -> None:
    srv.tmux("new-session", "-d", "-s", "alpha", "-n", "editor", "-x", "100", "-y", "30")
    srv.tmux("set", "-g", "remain-on-exit", "on")
    srv.tmux("new-window", "-d", "-t", "alpha", "-n", "job", "-c", "/tmp", "sleep 300")
    srv.tmux("new-window", "-d", "-t", "alpha", "-n", "dies", "sh -c 'exit 3'")
    ident = server_identity(srv.name)
    panes = wait_for(
        lambda: (
            [p for p in discover(srv.name) if p.window == "dies" and p.dead] and discover(srv.name)
        )
    )
    by_window = {p.window: p for p in panes}
    assert set(by_window) == {"editor", "job", "dies"}
    job = by_window["job"]
    assert job.session == "alpha" and job.command == "sleep" and job.cwd == "/tmp"
    assert job.ref.server == ident and job.ref.pane_id.startswith("%") and not job.dead
    assert by_window["editor"].width == 100 and by_window["editor"].height == 30
    assert by_window["dies"].dead
    assert job.label == f"alpha:job.{job.pane_index}"


def test_missing_socket_is_one_line_event_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(TmuxError, match="no tmux server"):
        server_identity(socket_path=str(tmp_path / "nope.sock"))
    w = Watcher(socket_path=str(tmp_path / "nope.sock"))
    w.start()
    try:
        seen = Seen(w)
        down = seen.until(lambda ev: next((e for e in ev if isinstance(e, ServerDown)), None))
        assert (
            isinstance(down, ServerDown) and "\n" not in down.reason and "nope.sock" in down.reason
        )
    finally:
        w.stop()


def test_lines_from_printing_pane_and_repeats_are_separate(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, ScreenChanged) for e in ev))
    script = "echo first; echo second; sleep 1; echo MARK; echo MARK; sleep 300"
    srv.tmux("new-window", "-d", "-n", "printer", f"sh -c {_sh(script)}")
    pane = seen.pane(lambda p: p.window == "printer")
    seen.until(lambda ev: seen.texts(pane.ref.pane_id).count("MARK") == 2)
    lines = seen.lines(pane.ref.pane_id)
    assert [t for _, t in lines] == ["first", "second", "MARK", "MARK"]
    marks = [s for s, t in lines if t == "MARK"]
    assert marks[0] != marks[1]
    assert w.panes()[pane.ref.key].window == "printer"
    assert w.last_read is not None


def test_new_session_while_watching_and_pane_killed(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    srv.tmux("new-session", "-d", "-s", "late", "sh -c 'sleep 0.5; echo from-late; sleep 300'")
    late = seen.pane(lambda p: p.session == "late")
    seen.until(lambda ev: "from-late" in seen.texts(late.ref.pane_id))
    extra = srv.tmux("split-window", "-d", "-t", "late", "-P", "-F", "#{pane_id}", "sleep 300")
    extra_id = extra.strip()
    seen.until(
        lambda ev: any(isinstance(e, PaneAdded) and e.pane.ref.pane_id == extra_id for e in ev)
    )
    srv.tmux("kill-pane", "-t", extra_id)
    seen.until(lambda ev: any(isinstance(e, PaneGone) and e.ref.pane_id == extra_id for e in ev))
    srv.tmux("kill-session", "-t", "late")
    seen.until(lambda ev: any(isinstance(e, PaneGone) and e.ref == late.ref for e in ev))
    assert set(w.panes()) == {k for k, p in w.panes().items() if p.session == "a"}
    assert w.last_error == ""


def test_server_killed_then_restarted(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch()
    up = seen.until(lambda ev: next((e for e in ev if isinstance(e, ServerUp)), None))
    assert isinstance(up, ServerUp)
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    srv.kill()
    seen.until(lambda ev: any(isinstance(e, ServerDown) for e in ev))
    assert w.panes() == {}
    srv.tmux("new-session", "-d", "-s", "b", SH)
    up2 = seen.until(
        lambda ev: next((e for e in ev if isinstance(e, ServerUp) and e.server != up.server), None)
    )
    assert isinstance(up2, ServerUp)
    seen.until(lambda ev: any(isinstance(e, PaneAdded) and e.pane.session == "b" for e in ev))


def test_read_prompt_shows_on_screen_and_send_answers_it(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    script = 'read -p "Continue? [y/N] " x; echo got-$x; sleep 300'
    srv.tmux("new-window", "-d", "-n", "ask", f"bash --norc --noprofile -c {_sh(script)}")
    pane = seen.pane(lambda p: p.window == "ask")
    seen.until(
        lambda ev: any(
            isinstance(e, ScreenChanged) and e.ref == pane.ref and "Continue? [y/N]" in e.text
            for e in ev
        )
    )
    w.send_text(pane.ref, "y")
    seen.until(lambda ev: "got-y" in seen.texts(pane.ref.pane_id))
    assert "Continue? [y/N] y" in seen.texts(pane.ref.pane_id)


ALT_PROGRAM = r"""
import sys, time
w = sys.stdout.write
print("before-alt", flush=True); time.sleep(1.0)
w("\x1b[?1049h\x1b[H\x1b[2JALT-SCREEN-1\r\n"); sys.stdout.flush(); time.sleep(1.0)
w("\x1b[H\x1b[2JALT-SCREEN-2\r\n"); sys.stdout.flush(); time.sleep(1.0)
w("\x1b[?1049l"); print("after-alt", flush=True); time.sleep(300)
"""


def test_alternate_screen_program(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    _w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    srv.tmux("new-window", "-d", "-n", "full", py(ALT_PROGRAM))
    pane = seen.pane(lambda p: p.window == "full")
    pid = pane.ref.pane_id
    seen.until(lambda ev: "after-alt" in seen.texts(pid))
    screens = [e.text for e in seen.all if isinstance(e, ScreenChanged) and e.ref == pane.ref]
    assert any("ALT-SCREEN-1" in s for s in screens)
    assert any("ALT-SCREEN-2" in s for s in screens)
    texts = seen.texts(pid)
    assert texts.count("before-alt") == 1 and texts.count("after-alt") == 1
    assert texts.index("before-alt") < texts.index("after-alt")
    assert not any("\x1b" in t for t in texts)


def agent_markers(srv: Server, watch, agent: str, prompt: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Run ``agent`` in a screen-mode window until its screen ends with ``prompt``; the
    marker lines the watcher reported for it."""
    srv.tmux("new-session", "-d", "-s", "a", SH)
    _w, seen = watch(screen_mode=lambda p: p.window == "agent")
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    srv.tmux("new-window", "-d", "-n", "agent", py(agent))
    pane = seen.pane(lambda p: p.window == "agent")
    seen.until(
        lambda ev: any(
            isinstance(e, ScreenChanged) and e.ref == pane.ref and e.text.endswith(prompt)
            for e in ev
        )
    )
    return [t for t in seen.texts(pane.ref.pane_id) if t.startswith("### SENTRY")]


def test_screen_mode_pane_reports_new_lines_once(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    agent = r"""
import sys, time
w = sys.stdout.write
for i in range(15):
    w("\r\x1b[Kthinking " + "|/-\\"[i % 4] + " " + str(i)); sys.stdout.flush(); time.sleep(0.05)
w("\r\x1b[K### SENTRY {\"type\": \"STATUS\", \"ok\": true}\r\n")
for i in range(15):
    w("\r\x1b[Kidle " + str(i)); sys.stdout.flush(); time.sleep(0.05)
w("\r\n> "); sys.stdout.flush(); time.sleep(300)
"""
    markers = agent_markers(srv, watch, agent, prompt=">")
    assert markers == ['### SENTRY {"type": "STATUS", "ok": true}']


def test_positions_round_trip(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w1, seen1 = watch()
    pane = seen1.pane(lambda p: p.session == "a")
    seen1.until(lambda ev: any(isinstance(e, ScreenChanged) and e.ref == pane.ref for e in ev))
    srv.tmux("send-keys", "-t", pane.ref.pane_id, "echo OLD-1; echo OLD-2", "Enter")
    seen1.until(lambda ev: "OLD-2" in seen1.texts())
    old_seq = max(s for s, t in seen1.lines() if t == "OLD-2")
    saved = w1.positions()
    assert pane.ref.key in saved
    w1.stop()

    srv.tmux("send-keys", "-t", pane.ref.pane_id, "echo NEW-1; echo NEW-2", "Enter")
    wait_for(lambda: "NEW-2\n" in srv.tmux("capture-pane", "-p", "-t", pane.ref.pane_id))
    _w2, seen2 = watch(positions=saved)
    seen2.until(lambda ev: "NEW-2" in seen2.texts())
    texts = seen2.texts()
    assert "NEW-1" in texts and "OLD-1" not in texts and "OLD-2" not in texts
    assert min(s for s, t in seen2.lines() if t == "NEW-1") > old_seq
    srv.tmux("send-keys", "-t", pane.ref.pane_id, "echo LIVE", "Enter")
    seen2.until(lambda ev: "LIVE" in seen2.texts())
    assert texts.count("NEW-1") == 1 and seen2.texts().count("NEW-1") == 1


def test_pane_killed_while_printing_does_not_stop_the_watcher(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch(screen_mode=lambda p: p.window == "flood")
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    flood = "import itertools\nfor i in itertools.count(): print('x' * 70, i)"
    for _ in range(3):
        out = srv.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", "-n", "flood", py(flood))
        pid = out.strip()
        seen.until(
            lambda ev, pid=pid: any(
                isinstance(e, ScreenChanged) and e.ref.pane_id == pid for e in ev
            )
        )
        srv.tmux("kill-pane", "-t", pid)
        seen.until(
            lambda ev, pid=pid: any(isinstance(e, PaneGone) and e.ref.pane_id == pid for e in ev)
        )
    srv.tmux("new-window", "-d", "-n", "after", "sh -c 'echo still-alive; sleep 300'")
    after = seen.pane(lambda p: p.window == "after")
    seen.until(lambda ev: "still-alive" in seen.texts(after.ref.pane_id))
    assert w.last_error == ""


# --------------------------------------------------------------------------------------------
# Terminal edge cases (issue 2): ANSI, wide characters, wrapped lines, clear, history limit


def test_ansi_is_stripped_for_matching_and_kept_for_display(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    _w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    script = r"printf '\033[1;31mFAIL\033[0m 3 tests\n'; sleep 300"
    srv.tmux("new-window", "-d", "-n", "colour", f"sh -c {_sh(script)}")
    pane = seen.pane(lambda p: p.window == "colour")
    seen.until(lambda ev: "FAIL 3 tests" in seen.texts(pane.ref.pane_id))
    screens = seen.until(
        lambda ev: [e for e in ev if isinstance(e, ScreenChanged) and e.ref == pane.ref]
    )
    assert "\x1b[" in screens[-1].ansi and "\x1b" not in screens[-1].text  # type: ignore[index]


def test_wide_characters_and_long_lines_arrive_whole(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", "-x", "60", "-y", "20", SH)
    _w, seen = watch(screen_mode=lambda p: p.window == "agent")
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    wide = "构建完成 ✓ 测试通过 テスト 🚀"
    long = "### SENTRY " + '{"type":"STATUS","stage":"build","ok":true,"msg":"' + "x" * 120 + '"}'
    code = (
        f"import time; print({wide!r}); print({long!r}); "
        "print('> ', end='', flush=True); time.sleep(300)"
    )
    srv.tmux("new-window", "-d", "-n", "lines", py(code))
    srv.tmux("new-window", "-d", "-n", "agent", py(code))
    lines = seen.pane(lambda p: p.window == "lines")
    agent = seen.pane(lambda p: p.window == "agent")
    seen.until(lambda ev: long in seen.texts(lines.ref.pane_id))
    seen.until(lambda ev: long in seen.texts(agent.ref.pane_id))  # the terminal wrapped it
    for pane in (lines, agent):
        assert wide in seen.texts(pane.ref.pane_id)
        assert seen.texts(pane.ref.pane_id).count(long) == 1


def test_clear_screen_then_the_same_marker_again_is_two_events(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    agent = r"""
import sys, time
w = sys.stdout.write
w("### SENTRY {\"type\": \"STATUS\", \"ok\": true}\r\n> "); sys.stdout.flush(); time.sleep(1.0)
w("\x1b[2J\x1b[H"); sys.stdout.flush(); time.sleep(0.5)
w("### SENTRY {\"type\": \"STATUS\", \"ok\": true}\r\n>> "); sys.stdout.flush(); time.sleep(300)
"""
    markers = agent_markers(srv, watch, agent, prompt=">>")
    assert len(markers) == 2


def test_history_limit_truncation_loses_no_streamed_line(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    srv.tmux("new-session", "-d", "-s", "a", SH)
    srv.tmux("set-option", "-g", "history-limit", "50")
    _w, seen = watch()
    seen.until(lambda ev: any(isinstance(e, PaneAdded) for e in ev))
    script = "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo n$i; done; sleep 300"
    srv.tmux("new-window", "-d", "-n", "flood", f"sh -c {_sh(script)}")
    pane = seen.pane(lambda p: p.window == "flood")
    seen.until(lambda ev: "n600" in seen.texts(pane.ref.pane_id), timeout=30)
    assert seen.texts(pane.ref.pane_id) == [f"n{i}" for i in range(1, 601)]


def test_positions_cover_only_lines_the_consumer_has_taken(srv: Server, watch) -> None:  # type: ignore[no-untyped-def]
    """A saved position must never run ahead of what the engine processed: a crash would
    otherwise lose the lines in between."""
    srv.tmux("new-session", "-d", "-s", "a", SH)
    w, seen = watch()
    pane = seen.pane(lambda p: p.session == "a")
    seen.until(lambda ev: any(isinstance(e, ScreenChanged) for e in ev))
    before = w.positions()[pane.ref.key]
    srv.tmux("send-keys", "-t", pane.ref.pane_id, "echo taken-later", "Enter")

    def waiting_lines() -> bool:
        with w._lock:  # peek: emitted by the watcher, not yet handed to the consumer
            return any(isinstance(e, OutputLines) for e in w._events)

    wait_for(waiting_lines)
    assert w.positions()[pane.ref.key] == before
    seen.until(lambda ev: "taken-later" in seen.texts(pane.ref.pane_id))
    assert w.positions()[pane.ref.key] != before


def test_kill_server_stops_a_server_whose_engine_runs_inside_it(
    srv: Server, tmp_path: Path
) -> None:
    """The UI and the engine it hosts often run in a window of the server they watch (`up`,
    the demo). kill-server then kills them with their pane; their `tmux -C` clients must not
    outlive them, or tmux never finishes shutting the server down (it did, before the clients
    got PR_SET_PDEATHSIG)."""
    ui = f"{sys.executable} -m sentry_tui ui --socket {srv.name} --state-dir {tmp_path / 's'}"
    srv.tmux("new-session", "-d", "-s", "a", "-x", "100", "-y", "30", ui)

    def control_pids() -> list[int]:
        rows = srv.tmux("list-clients", "-F", "#{client_control_mode} #{client_pid}").split("\n")
        return [int(r.split()[1]) for r in rows if r.startswith("1 ")]

    clients = wait_for(control_pids, timeout=30)
    wait_for(lambda: "panes" in srv.tmux("capture-pane", "-p", "-t", "a"), timeout=30)
    pid = int(srv.tmux("display-message", "-p", "#{pid}").strip())
    srv.tmux("kill-server")
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=15)
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in clients), timeout=10)


def test_wake_ends_a_wait_for_events_now_or_the_next_one() -> None:
    """The engine waits up to a quarter second for tmux; a key press must not wait with it."""
    import threading

    w = Watcher(socket_name=f"sentry-test-{uuid.uuid4().hex[:8]}")  # never started: no tmux
    got: list[list[object]] = []

    def wait_in_a_thread(wake_first: bool) -> threading.Thread:
        if wake_first:
            w.wake()
        waiter = threading.Thread(target=lambda: got.append(list(w.events(60.0))), daemon=True)
        waiter.start()
        if not wake_first:
            w.wake()  # during the wait (or, if the thread is slow to start, before it)
        waiter.join(timeout=10)
        return waiter

    assert not wait_in_a_thread(wake_first=False).is_alive() and got == [[]]
    # with nobody waiting: the next call returns at once instead of in a minute
    assert not wait_in_a_thread(wake_first=True).is_alive() and got == [[], []]
