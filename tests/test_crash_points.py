"""crash.py: a named point kills the process with SIGKILL, logs itself first, and only there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentry_tui import crash

CHILD = textwrap.dedent(
    """
    import sys
    from sentry_tui.crash import crash_point
    for i in range(1, 4):
        print(f"before {i}", flush=True)
        crash_point("mid_capture")
        crash_point("mid_state_write")
    print("finished", flush=True)
    """
)


def _run(tmp_path: Path, at: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "crash.log"
    env = {**os.environ, crash.ENV_AT: at, crash.ENV_LOG: str(log)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    return proc, (log.read_text().split() if log.exists() else [])


def test_first_hit_kills_with_sigkill_and_logs_the_name(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "mid_state_write")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[:-1] == ["before 1"]
    assert log == ["mid_state_write"]


def test_nth_hit(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "mid_capture@3")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[:-1] == ["before 1", "before 2", "before 3"]
    assert log == ["mid_capture"]


def test_list_of_points_the_first_reached_wins(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, " after_send_before_done , mid_state_write@2")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.split("\n")[:-1] == ["before 1", "before 2"]
    assert log == ["mid_state_write"]


def test_points_not_named_or_not_reached_do_nothing(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "mid_capture@9")
    assert proc.returncode == 0 and "finished" in proc.stdout
    assert log == []


def test_unset_environment_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crash.ENV_AT, raising=False)
    for name in crash.KNOWN_POINTS:
        crash.crash_point(name)


def test_unknown_point_name_fails_loudly() -> None:
    with pytest.raises(ValueError, match="unknown crash point 'mid_sate_write'"):
        crash.crash_point("mid_sate_write")


def test_runner_points_are_known() -> None:
    assert {
        "after_journal_before_send",
        "after_send_before_done",
        "between_approval_and_start",
        "mid_capture",
        "mid_state_write",
    } <= crash.KNOWN_POINTS
