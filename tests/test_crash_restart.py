"""Crash the real engine at every named point, restart it, and prove nothing is lost or repeated.

`sentry-tui watch` runs as a real process on a real private tmux server with an active
pipeline. `SENTRY_TUI_CRASH_AT` makes it SIGKILL itself at a named point (sentry_tui/crash.py);
the test restarts it, answers as a human would (approve; retry an uncertain send), and checks:

- the crash really happened at that point (the crash log names it);
- no command reached a pane twice: every send has its own action id, the shell received no
  more commands than were journalled, and the deploy ran exactly once;
- no event was lost from the history: every END marker the wrapper printed (each has its own
  nonce) is in the history, including those printed while the engine was dead;
- pending approvals survive the restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from live_engine import shell_lines, start_agent, start_shell, write_policy

from sentry_tui.config import Paths
from sentry_tui.model import EngineState, RunStatus
from sentry_tui.store import Store

pytestmark = [pytest.mark.tmux, pytest.mark.slow]


class Engine:
    """One `sentry-tui watch` process at a time, restarted as the test says."""

    def __init__(self, server: Any, tmp_path: Path) -> None:
        self.socket = server.socket_name
        self.tmp = tmp_path
        self.state_dir = tmp_path / "state"
        self.policy = write_policy(tmp_path)
        self.crash_log = tmp_path / "crash.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, crash_at: str | None = None) -> None:
        env = dict(os.environ)
        env.pop("SENTRY_TUI_CRASH_AT", None)
        if crash_at:
            env["SENTRY_TUI_CRASH_AT"] = crash_at
            env["SENTRY_TUI_CRASH_LOG"] = str(self.crash_log)
        self.starts += 1
        out = open(self.tmp / f"engine-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentry_tui", "watch", "--json", *self.common()],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def common(self) -> list[str]:
        return [
            "--socket", self.socket,
            "--state-dir", str(self.state_dir),
            "--policy", str(self.policy),
        ]  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_crashed(self) -> None:
        assert self.proc is not None
        self.proc.wait(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL, self.proc.returncode

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def state(self) -> EngineState:
        return Store(Paths(self.state_dir)).load(readonly=True)[0]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sentry_tui", args[0], *self.common(), *args[1:]],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def history(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for path in sorted(self.state_dir.glob("history.jsonl*"), reverse=True):
            for raw in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line torn by a kill
                    lines.append(json.loads(raw))
        return lines


@pytest.fixture
def engine(server, tmp_path: Path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    eng = Engine(server, tmp_path)
    try:
        yield eng
    finally:
        eng.kill()


def settle(engine: Engine, *, until_approval: bool) -> EngineState:
    """Keep the engine running and act as the human until the pipeline reaches its next stop:
    an uncertain send is retried (a human saying "send it again"), a dead engine restarted."""

    def step() -> EngineState | None:
        if not engine.alive():
            engine.start()
        state = engine.state()
        for entry in state.journal.values():
            if entry.status == "uncertain" and entry.stage:
                engine.cli("retry", entry.project, entry.stage, "--no-wait")
                return None
        run = state.runs.get("e2e")
        if until_approval:
            if any(a.status == "pending" for a in state.approvals.values()):
                return state
        elif run is not None and run.status is RunStatus.SUCCEEDED:
            return state
        return None

    return wait_for(step, timeout=90, interval=0.3)


def check_invariants(engine: Engine) -> None:
    history = engine.history()
    sends = [h for h in history if h["kind"] == "action_send"]
    ids = [h["action_id"] for h in sends]
    assert len(ids) == len(set(ids)), f"a send was journalled twice: {ids}"
    received = shell_lines(engine.tmp)
    assert len(received) <= len(sends), (received, ids)
    deploys = [r for r in received if "echo deployed-" in r]
    assert len(deploys) == 1, received
    ran = int((engine.tmp / "count").read_text())
    test_cmds = [r for r in received if "--stage test" in r]
    assert len(test_cmds) == ran, (test_cmds, ran)  # every test command received ran once
    ends = {
        h.get("nonce")
        for h in history
        if h["kind"] == "marker" and h.get("type") == "END" and h.get("stage") == "test"
    }
    assert len(ends) == ran, f"END markers lost from the history: {len(ends)} of {ran}"
    assert not (engine.tmp / "agent.log").exists(), "something was typed into the agent pane"


def run_with_crash(engine: Engine, server: Any, point: str) -> None:
    session = start_shell(server, engine.tmp)
    gate_point = point.startswith("between_approval_and_start")
    engine.start(None if gate_point else point)
    wait_for(lambda: (engine.state_dir / "snapshot.json").exists(), timeout=30)
    start_agent(session, engine.tmp)
    if not gate_point:
        engine.wait_crashed()
    before = settle(engine, until_approval=True)
    (approval,) = [a for a in before.approvals.values() if a.status == "pending"]
    if gate_point:
        engine.stop()
        engine.start(point)
        wait_for(lambda: (engine.state_dir / "snapshot.json").exists(), timeout=30)
    engine.cli("approve", approval.approval_id, "--no-wait")
    if gate_point:
        engine.wait_crashed()
        after = engine.state()
        assert after.approvals[approval.approval_id].status == "approved"
    settle(engine, until_approval=False)
    engine.stop()
    hit = engine.crash_log.read_text().split()
    assert hit == [point.partition("@")[0]], hit
    check_invariants(engine)


@pytest.mark.parametrize(
    "point",
    [
        "after_journal_before_send",
        "after_send_before_done",
        "mid_state_write@4",
        "mid_capture@3",
        "between_approval_and_start",
    ],
)
def test_crash_at_named_point_then_resume(engine: Engine, server: Any, point: str) -> None:
    run_with_crash(engine, server, point)


def test_pending_approval_survives_a_kill(engine: Engine, server: Any) -> None:
    session = start_shell(server, engine.tmp)
    engine.start()
    wait_for(lambda: (engine.state_dir / "snapshot.json").exists(), timeout=30)
    start_agent(session, engine.tmp)
    before = settle(engine, until_approval=True)
    engine.kill()
    after = engine.state()
    assert {k: a.status for k, a in after.approvals.items()} == {
        k: a.status for k, a in before.approvals.items()
    }
    assert after.runs["e2e"].stages == before.runs["e2e"].stages
    engine.start()
    wait_for(lambda: engine.alive() and (engine.state_dir / "snapshot.json").exists())
    status = engine.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    pending_ids = [a["approval_id"] for a in json.loads(status.stdout)["approvals"]]
    assert pending_ids == [a.approval_id for a in before.approvals.values()]


def test_random_kills_lose_and_repeat_nothing(engine: Engine, server: Any) -> None:
    rng = random.Random(int(os.environ.get("SENTRY_TUI_CRASH_SEED", "7")))
    session = start_shell(server, engine.tmp)
    engine.start()
    wait_for(lambda: (engine.state_dir / "snapshot.json").exists(), timeout=30)
    start_agent(session, engine.tmp)
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 2.5))  # a kill at a random moment, not a wait
        engine.kill()
        engine.start()
    state = settle(engine, until_approval=True)
    (approval,) = [a for a in state.approvals.values() if a.status == "pending"]
    engine.cli("approve", approval.approval_id, "--no-wait")
    settle(engine, until_approval=False)
    engine.stop()
    check_invariants(engine)
