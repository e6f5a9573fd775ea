"""The commands a person types over SSH, run as real processes against real state and tmux.

watch --json's event lines, status in 60 columns, approvals by id (unknown ids refused), one
engine per state dir, `up` on a private server, the systemd unit, and the headless demo.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from live_engine import live_runner, pending, start_agent, start_shell

from sentry_tui import summary
from sentry_tui.config import Paths
from sentry_tui.remote import current_snapshot

CLI = [sys.executable, "-m", "sentry_tui"]


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.tmux
def test_watch_json_prints_one_event_per_line_with_pane_fields(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = server.new_session("jobs", window_name="build", window_command="sh")
    proc = subprocess.Popen(
        [*CLI, "watch", "--json", "--socket", server.socket_name,
         "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[dict[str, Any]] = []
    try:

        def seen(kind: str, **fields: Any) -> bool:
            while not any(
                e["kind"] == kind and all(e.get(k) == v for k, v in fields.items()) for e in lines
            ):
                raw = proc.stdout.readline() if proc.stdout else ""
                if not raw:
                    return False
                lines.append(json.loads(raw))
            return True

        assert seen("pane_added", session="jobs", window="build")
        assert seen("state", window="build")  # read once: what it prints now is news
        pane = session.active_window.active_pane
        pane.send_keys(
            """printf '### SENTRY {"type":"STATUS","stage":"build","ok":true}\\n'""", enter=True
        )
        assert seen("marker", type="STATUS", stage="build", ok=True)
        pane.send_keys("printf '### SENTRY {bad json\\n'", enter=True)
        assert seen("malformed_marker", window="build")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    marker = next(e for e in lines if e["kind"] == "marker")
    assert {"ts", "pane", "session", "window", "kind"} <= set(marker)
    assert marker["pane"].startswith("%") and marker["trust"] == "unsigned"
    bad = next(e for e in lines if e["kind"] == "malformed_marker")
    assert bad["reason"]
    assert proc.returncode == 0


@pytest.mark.tmux
def test_second_engine_names_the_first_and_exits_nonzero(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = str(tmp_path / "state")
    first = subprocess.Popen(
        [*CLI, "watch", "--socket", server.socket_name, "--state-dir", state],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: (tmp_path / "state" / "snapshot.json").exists(), timeout=30)
        second = cli("watch", "--socket", server.socket_name, "--state-dir", state)
        assert second.returncode != 0
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)


@pytest.mark.tmux
def test_status_fits_60_columns_and_approve_by_id_over_ssh(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = start_shell(server, tmp_path)
    state = str(tmp_path / "state")
    with live_runner(server, tmp_path) as runner:
        wait_for(lambda: runner.snapshot().last_read is not None, timeout=20)
        start_agent(session, tmp_path)
        (approval,) = wait_for(lambda: pending(runner), timeout=40)
        wait_for(lambda: (tmp_path / "state" / "snapshot.json").exists())

        out = cli("status", "--state-dir", state)
        assert out.returncode == 0, out.stderr
        assert all(len(line) <= summary.WIDTH for line in out.stdout.splitlines()), out.stdout
        assert f"sentry-tui approve {approval.approval_id}" in out.stdout

        unknown = cli("approve", "zz9z", "--state-dir", state)
        assert unknown.returncode != 0 and "zz9z" in unknown.stderr

        done = cli("approve", approval.approval_id, "--state-dir", state)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: runner.snapshot().state.approvals[approval.approval_id].status
                 == "approved")  # fmt: skip
        again = cli("approve", approval.approval_id, "--state-dir", state)
        assert again.returncode != 0 and "already" in (again.stdout + again.stderr)


def test_approve_with_no_engine_checks_the_saved_state(tmp_path: Path) -> None:
    out = cli("approve", "k3x9", "--state-dir", str(tmp_path / "state"))
    assert out.returncode == 2
    assert out.stderr.strip() == "sentry-tui: unknown approval id 'k3x9' (see `sentry-tui status`)"
    snap = current_snapshot(Paths(tmp_path / "state"), _empty_policy())
    assert not snap.engine_alive


def _empty_policy():  # type: ignore[no-untyped-def]
    from sentry_tui.model import Policy

    return Policy()


@pytest.mark.tmux
def test_up_opens_one_sentry_window_and_reuses_it(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ["up", "--socket", server.socket_name, "--state-dir", str(tmp_path / "state")]
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    for _ in range(2):
        out = subprocess.run(
            [*CLI, *args],
            capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    session = server.sessions.get(session_name="sentry")
    assert [w.window_name for w in session.windows] == ["sentry"]
    pane = session.windows[0].active_pane
    wait_for(lambda: "panes" in "\n".join(pane.capture_pane()), timeout=30)


def test_service_unit_install_and_uninstall(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    common = ["--unit-dir", str(unit_dir), "--no-enable", "--state-dir", str(tmp_path / "s")]
    out = cli("service", "install", *common)
    assert out.returncode == 0, out.stderr
    unit = (unit_dir / "sentry-tui.service").read_text()
    assert "watch" in unit and f"--state-dir {tmp_path / 's'}" in unit
    assert "[Install]" in unit and "Restart=on-failure" in unit
    out = cli("service", "uninstall", *common)
    assert out.returncode == 0 and not (unit_dir / "sentry-tui.service").exists()
    foreign = unit_dir / "sentry-tui.service"
    foreign.write_text("[Unit]\nDescription=mine\n")
    assert cli("service", "uninstall", *common).returncode == 1
    assert foreign.exists()  # never removes a unit it did not write


@pytest.mark.tmux
def test_headless_demo_moves_its_pipeline_and_stops_its_server() -> None:
    proc = subprocess.Popen(
        [*CLI, "demo", "--headless", "--json", "--seconds", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    demo_server = demo_server_pid(f"sentry-demo-{proc.pid}")
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr[-2000:]
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    kinds = {e["kind"] for e in events}
    assert {"pane_added", "state", "marker"} <= kinds
    ends = [e for e in events if e["kind"] == "marker" and e.get("type") == "END"]
    assert [e["exit"] for e in ends if e.get("stage") == "test"][:2] == [1, 0]  # fail, retry
    assert any(e["kind"] == "state" and e["state"] == "waiting" for e in events)
    wait_for(lambda: not Path(f"/proc/{demo_server}").exists(), timeout=10)


def test_approve_with_no_engine_refuses_decided_and_expired_ids(tmp_path: Path) -> None:
    from sentry_tui.model import Approval, EngineState, Gate
    from sentry_tui.store import Store

    def approval(aid: str, **kw: Any) -> Approval:
        return Approval(aid, "shop", "deploy", "r1", Gate.BEFORE, created_at=1.0, **kw)

    state = EngineState(
        approvals={
            "old1": approval("old1", expires_at=2.0),
            "done": approval("done", status="approved", decided_at=3.0),
            "live": approval("live"),
        }
    )
    Store(Paths(tmp_path / "state")).save(state, {})
    args = ["--state-dir", str(tmp_path / "state")]
    expired = cli("approve", "old1", *args)
    assert expired.returncode == 2 and "expired" in expired.stderr
    assert "sentry-tui retry shop deploy" in expired.stderr
    decided = cli("approve", "done", *args)
    assert decided.returncode == 2 and "already approved" in decided.stderr
    queued = cli("approve", "live", *args)
    assert queued.returncode == 0 and "queued" in queued.stdout  # applied when an engine starts


@pytest.mark.tmux
def test_demo_in_a_terminal_shows_the_ui_and_sigterm_stops_its_server(server) -> None:  # type: ignore[no-untyped-def]
    session = server.new_session(
        "outer", window_command=f"{sys.executable} -m sentry_tui demo", x=120, y=40
    )
    pane = session.active_window.active_pane
    wait_for(lambda: "approve" in "\n".join(pane.capture_pane()), timeout=30)  # the key bar
    pid = int(pane.pane_pid or 0)
    demo_server = demo_server_pid(f"sentry-demo-{pid}")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{demo_server}").exists(), timeout=20)
    from sentry_tui.tmux import socket_file

    wait_for(lambda: not socket_file(f"sentry-demo-{pid}").exists(), timeout=10)


def demo_server_pid(socket: str) -> int:
    """The pid of the demo's own tmux server: gone means stopped, not merely unreachable."""

    def ask() -> int:
        out = subprocess.run(
            ["tmux", "-L", socket, "display-message", "-p", "#{pid}"],
            capture_output=True, text=True,
        )  # fmt: skip
        return int(out.stdout.strip() or 0)

    return wait_for(ask, timeout=30)


@pytest.mark.tmux
def test_ui_in_a_real_terminal_repaints_the_moved_highlight(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Only the two rows a cursor move changes are redrawn (the list does not repaint on a
    highlight change): on a real terminal exactly one row may carry the highlight."""
    session = server.new_session(session_name="work", x=120, y=40)
    for _ in range(4):
        session.new_window(window_shell="sleep 100000")
    env = "env -u TMUX_PANE TERM=xterm-256color "
    ui = " ".join([*CLI, "ui", "--socket", server.socket_name, "--state-dir", str(tmp_path / "s")])
    pane = session.new_window(window_name="ui", window_shell=env + ui).active_pane

    def rows() -> list[str]:  # the pane list's rows, with their escape codes
        screen = pane.cmd("capture-pane", "-e", "-p").stdout
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", ln)[:40] for ln in screen]
        return [ln for ln, p in zip(screen, plain, strict=True) if "busy" in p or "idle" in p]

    def cursor_at() -> int:
        marked = [i for i, ln in enumerate(rows()) if "▸" in ln]
        return marked[0] if len(marked) == 1 else -1

    wait_for(lambda: len(rows()) >= 5 and cursor_at() >= 0, timeout=30)
    start = cursor_at()
    for _ in range(2):
        pane.send_keys("j", enter=False)
    wait_for(lambda: cursor_at() == start + 2, timeout=10)
    lines = rows()
    backgrounds = [re.findall(r"\x1b\[[0-9;]*48;[0-9;]+m", ln)[:1] for ln in lines]
    usual = backgrounds[0 if start + 2 != 0 else 1]
    odd = [i for i, bg in enumerate(backgrounds) if bg != usual]
    assert odd == [start + 2], lines
