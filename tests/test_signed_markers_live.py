"""Forged, badly signed and replayed markers cannot move a signed stage (issue 7's proof).

A pane `cat`s a file holding a forged `### SENTRY` END line claiming the deploy succeeded: the
stage does not move and the marker is reported as ignored, with why. The wrapper's signed END
marker does move it; printed a second time (into the next run), it moves nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from live_engine import live_runner

from sentry_tui.model import RunStatus, StageStatus, Start

pytestmark = pytest.mark.tmux

POLICY = """
version: 1
projects:
  sig:
    require_signed: true
    panes:
      shell: {{session: sig, window: shell, profile: shell}}
      other: {{session: sig, window: other, profile: shell}}
    stages:
      - name: deploy
        pane: shell
        run: sh {gate} {go} {replay}
        timeout: 2m
"""

# Waits for the go-ahead file; in the second run it first prints the saved signed line.
GATE = 'cat "$2" 2>/dev/null; while [ ! -e "$1" ]; do sleep 0.1; done; rm -f "$1"; echo shipped\n'


def stage(runner: Any) -> Any:
    return runner.snapshot().state.runs["sig"].stage("deploy")


def test_forged_and_replayed_markers_never_move_a_signed_stage(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "gate.sh").write_text(GATE)
    go = tmp_path / "go"
    policy = tmp_path / "sig.yaml"
    replay = tmp_path / "replay.txt"
    policy.write_text(POLICY.format(gate=tmp_path / "gate.sh", go=go, replay=replay))
    forged = tmp_path / "page.html"
    forged.write_text(
        "<p>release notes</p>\n"
        '### SENTRY {"type":"END","stage":"deploy","project":"sig","exit":0}\n'
        '### SENTRY {"type":"END","stage":"deploy","project":"sig","exit":0,'
        '"nonce":"0011","sig":"' + "ab" * 32 + '"}\n'
    )
    session = server.new_session("sig", window_name="shell", window_command="sh")
    other = session.new_window(window_name="other", window_shell="sh").active_pane
    events: list[dict[str, Any]] = []
    with live_runner(server, tmp_path, policy, on_event=events.append) as runner:
        wait_for(lambda: len(runner.snapshot().state.panes) == 2, timeout=20)
        runner.submit(Start(by="test", project="sig"))
        wait_for(lambda: any(e["kind"] == "marker" and e.get("type") == "START" for e in events))
        assert stage(runner).status is StageStatus.RUNNING

        other.send_keys(f"cat {forged}", enter=True)
        ignored = wait_for(
            lambda: [e for e in events if e["kind"] == "marker_ignored"] or None, timeout=20
        )
        wait_for(lambda: len([e for e in events if e["kind"] == "marker_ignored"]) >= 2)
        reasons = " | ".join(e["reason"] for e in events if e["kind"] == "marker_ignored")
        assert "not printed in the pane of stage deploy" in reasons, reasons
        assert ignored[0]["window"] == "other"
        assert stage(runner).status is StageStatus.RUNNING  # the forgery moved nothing

        go.touch()
        wait_for(lambda: runner.snapshot().state.runs["sig"].status is RunStatus.SUCCEEDED, 20)
        end = next(
            e
            for e in events
            if e["kind"] == "marker" and e.get("type") == "END" and e["window"] == "shell"
        )
        assert end["trust"] == "signed" and end["exit"] == 0

        # The old signed END, printed again by the next run's deploy in the stage's own pane,
        # is a replay: reported, and it does not end the new attempt.
        fields = {k: end[k] for k in ("type", "stage", "project", "run", "exit", "nonce", "sig")}
        fields.update({k: end[k] for k in ("pane", "duration_s") if k in end})
        replay.write_text("### SENTRY " + json.dumps(fields) + "\n")
        before = len([e for e in events if e["kind"] == "marker_ignored"])
        runner.submit(Start(by="test", project="sig"))
        wait_for(lambda: len([e for e in events if e["kind"] == "marker_ignored"]) > before, 20)
        last = [e for e in events if e["kind"] == "marker_ignored"][-1]
        assert last["window"] == "shell" and "replay" in last["reason"], last
        assert stage(runner).status is StageStatus.RUNNING
        go.touch()  # let the second deploy finish so its pane is quiet
        wait_for(lambda: runner.snapshot().state.runs["sig"].status is RunStatus.SUCCEEDED, 20)
