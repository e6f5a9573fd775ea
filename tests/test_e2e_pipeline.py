"""A whole pipeline on a real private tmux server (issue 3's end-to-end proof).

A scripted agent prints its `code` marker; the engine types the wrapped test command into the
shell pane, sees it fail by exit status, retries it, sees it pass, stops at the deploy gate and
goes on only after the approval. The shell pane's own log proves each command arrived once;
the agent's log proves nothing was ever typed into it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentry_tui.config import Paths
from sentry_tui.model import Approve, RunStatus
from sentry_tui.policy import load_policy
from sentry_tui.runner import Runner, RunnerOptions
from tests.conftest import wait_for

E2E = Path(__file__).parent / "e2e"

POLICY = """
version: 1
projects:
  e2e:
    panes:
      agent: {{session: proj, window: agent, profile: shell}}
      shell: {{session: proj, window: shell, profile: shell}}
    trigger:
      pane: agent
      when: {{marker: {{type: STATUS, stage: code, ok: true}}}}
    stages:
      - name: code
        pane: agent
        done: {{marker: {{type: STATUS, stage: code, ok: true}}}}
      - name: test
        pane: shell
        run: sh {flaky} {count}
        retries: 2
        timeout: 1m
      - name: deploy
        pane: shell
        approve: before
        run: echo deployed-{count}
"""


@pytest.fixture
def running(server, tmp_path: Path) -> Iterator[tuple[Runner, Path]]:  # type: ignore[no-untyped-def]
    shell_log = tmp_path / "shell.log"
    server.new_session(
        "proj",
        window_name="shell",
        window_command=f"{sys.executable} {E2E / 'logshell.py'} {shell_log}",
    )
    policy_file = tmp_path / "e2e.yaml"
    policy_file.write_text(POLICY.format(flaky=E2E / "flaky_test.sh", count=tmp_path / "count"))
    runner = Runner(
        load_policy([policy_file]),
        Paths(tmp_path / "state"),
        RunnerOptions(socket_name=server.socket_name),
    )
    runner.open()
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    loop.start()
    try:
        yield runner, tmp_path
    finally:
        stop.set()
        loop.join(timeout=10)
        runner.close()


def shell_lines(tmp_path: Path) -> list[str]:
    log = tmp_path / "shell.log"
    return [ln for ln in log.read_text().splitlines() if ln.strip()] if log.exists() else []


@pytest.mark.tmux
def test_pipeline_retries_stops_at_gate_and_sends_each_command_once(running, server) -> None:  # type: ignore[no-untyped-def]
    runner, tmp_path = running
    wait_for(lambda: runner.snapshot().last_read is not None, timeout=20)
    session = server.sessions.get(session_name="proj")
    session.new_window(
        window_name="agent", window_shell=f"sh {E2E / 'agent.sh'} {tmp_path / 'agent.log'}"
    )

    def pending() -> list:
        return [a for a in runner.snapshot().state.approvals.values() if a.status == "pending"]

    approvals = wait_for(pending, timeout=40)
    assert len(approvals) == 1 and approvals[0].stage == "deploy"
    run = runner.snapshot().state.runs["e2e"]
    test_stage = run.stage("test")
    assert test_stage is not None and test_stage.attempts == 2
    sent = shell_lines(tmp_path)
    assert len(sent) == 2, sent  # the failing attempt and its retry, nothing else
    assert all("--stage test" in s and "flaky_test.sh" in s for s in sent)
    assert (tmp_path / "count").read_text().strip() == "2"

    runner.submit(Approve(by="test", approval_id=approvals[0].approval_id))
    wait_for(lambda: runner.snapshot().state.runs["e2e"].status is RunStatus.SUCCEEDED, 30)
    sent = shell_lines(tmp_path)
    assert len(sent) == 3, sent
    assert sent[2].endswith(f"echo deployed-{tmp_path / 'count'}")
    assert not (tmp_path / "agent.log").exists(), "something was typed into the agent pane"
