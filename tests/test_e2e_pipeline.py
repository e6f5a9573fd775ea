"""A whole pipeline on a real private tmux server (issue 3's end-to-end proof).

A scripted agent prints its `code` marker; the engine types the wrapped test command into the
shell pane, sees it fail by exit status, retries it, sees it pass, stops at the deploy gate and
goes on only after the approval. The shell pane's own log proves each command arrived once;
the agent's log proves nothing was ever typed into it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for
from live_engine import live_runner, pending, shell_lines, start_agent, start_shell

from sentry_tui.model import Approve, RunStatus


@pytest.mark.tmux
def test_pipeline_retries_stops_at_gate_and_sends_each_command_once(
    server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    session = start_shell(server, tmp_path)
    with live_runner(server, tmp_path) as runner:
        wait_for(lambda: runner.snapshot().last_read is not None, timeout=20)
        start_agent(session, tmp_path)

        approvals = wait_for(lambda: pending(runner), timeout=40)
        assert len(approvals) == 1 and approvals[0].stage == "deploy"
        test_stage = runner.snapshot().state.runs["e2e"].stage("test")
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


@pytest.mark.tmux
def test_dry_run_shows_the_send_and_types_nothing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = start_shell(server, tmp_path)
    events: list[dict] = []  # type: ignore[type-arg]
    with live_runner(server, tmp_path, dry_run=True, on_event=events.append) as runner:
        wait_for(lambda: runner.snapshot().last_read is not None, timeout=20)
        start_agent(session, tmp_path)
        shown = wait_for(lambda: [e for e in events if e["kind"] == "dry_run_send"], timeout=40)
        assert "--stage test" in shown[0]["text"] and "flaky_test.sh" in shown[0]["text"]
    assert shell_lines(tmp_path) == []
