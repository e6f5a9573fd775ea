"""A real engine on a real private tmux server, for end-to-end and live UI tests.

The project has a scripted agent window and a logging shell window (tests/e2e/); the runner
loop runs in a thread exactly as the TUI hosts it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sentry_tui.config import Paths
from sentry_tui.model import Approval
from sentry_tui.policy import load_policy
from sentry_tui.runner import Runner, RunnerOptions

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


def write_policy(tmp_path: Path) -> Path:
    policy_file = tmp_path / "e2e.yaml"
    policy_file.write_text(POLICY.format(flaky=E2E / "flaky_test.sh", count=tmp_path / "count"))
    return policy_file


def start_shell(server: Any, tmp_path: Path) -> Any:
    """Session `proj` with the logging shell; the agent window comes later (start_agent)."""
    return server.new_session(
        "proj",
        window_name="shell",
        window_command=f"{sys.executable} {E2E / 'logshell.py'} {tmp_path / 'shell.log'}",
    )


def start_agent(session: Any, tmp_path: Path) -> None:
    session.new_window(
        window_name="agent", window_shell=f"sh {E2E / 'agent.sh'} {tmp_path / 'agent.log'}"
    )


def shell_lines(tmp_path: Path) -> list[str]:
    log = tmp_path / "shell.log"
    return [ln for ln in log.read_text().splitlines() if ln.strip()] if log.exists() else []


def pending(runner: Runner) -> list[Approval]:
    return [a for a in runner.snapshot().state.approvals.values() if a.status == "pending"]


@contextmanager
def live_runner(
    server: Any, tmp_path: Path, policy_file: Path | None = None, **options: Any
) -> Iterator[Runner]:
    """A started runner on ``server`` (default: the e2e policy), its loop in a thread."""
    runner = Runner(
        load_policy([policy_file or write_policy(tmp_path)]),
        Paths(tmp_path / "state"),
        RunnerOptions(socket_name=server.socket_name, **options),
    )
    runner.open()
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    loop.start()
    try:
        yield runner
    finally:
        stop.set()
        loop.join(timeout=10)
        runner.close()
