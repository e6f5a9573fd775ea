"""Hand-built engine snapshots and an in-memory client for the UI's tests and screenshots.

``FakeClient`` stands in only for the engine process (the lead's integration tests drive the
UI against a real engine and tmux). It serves whatever Snapshot a test sets and records every
command the UI submits, so a test can assert exactly which HumanEvents a key press produced.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from sentry_tui.model import (
    Approval,
    EngineState,
    Gate,
    HumanEvent,
    JournalEntry,
    Marker,
    PaneInfo,
    PaneRef,
    PaneState,
    PaneStatus,
    PipelineRun,
    Policy,
    RunStatus,
    Snapshot,
    StageState,
    StageStatus,
    Trust,
)

NOW = 1_764_000_000.0  # a fixed clock: every duration in snapshots is frozen
SERVER = "4242-1763990000"


def frozen_clock() -> float:
    return NOW


def key(pane_id: str) -> str:
    return PaneRef(SERVER, pane_id).key


def _pane(
    pane_id: str,
    session: str,
    window: str,
    window_index: int,
    command: str,
    state: PaneState,
    since: float,
    *,
    pane_index: int = 0,
    roles: tuple[str, ...] = (),
    reason: str = "",
) -> PaneStatus:
    info = PaneInfo(
        ref=PaneRef(SERVER, pane_id),
        session=session,
        window=window,
        window_index=window_index,
        pane_index=pane_index,
        command=command,
        cwd=f"/srv/{session}",
    )
    return PaneStatus(info=info, state=state, since=NOW - since, reason=reason, roles=roles)


def _stage(
    name: str,
    status: StageStatus,
    attempts: int = 0,
    started: float | None = None,
    took: float | None = None,
    message: str = "",
) -> StageState:
    started_at = NOW - started if started is not None else None
    finished_at = started_at + took if started_at is not None and took is not None else None
    return StageState(
        name=name,
        status=status,
        attempts=attempts,
        started_at=started_at,
        finished_at=finished_at,
        message=message,
    )


AGENT_STORY = key("%1")
SHELL_STORY = key("%2")
LOGS_STORY = key("%3")
AGENT_POINTS = key("%4")
SHELL_POINTS = key("%5")
WATCH_POINTS = key("%6")

APPROVAL_STORY = "k7q2"
APPROVAL_POINTS = "m3x9"
UNCERTAIN_SEND = "s-0012"

TAILS = {
    AGENT_STORY: (
        "\x1b[1m● Update(src/pages/Story.tsx)\x1b[0m\n"
        "  ⎿  Updated src/pages/Story.tsx with \x1b[32m12 additions\x1b[0m and "
        "\x1b[31m3 removals\x1b[0m\n"
        "\x1b[1m● Bash(npm run lint)\x1b[0m\n"
        "  ⎿  \x1b[32m✔ no problems\x1b[0m\n"
        '  ⎿  ### SENTRY {"type":"STATUS","stage":"code","ok":true,"msg":"story page done"}\n'
        "\x1b[2m> \x1b[0m"
    ),
    SHELL_STORY: (
        "$ sentry-tui wrap --stage test -- npm test\n"
        "\x1b[31m  ✗ renders the story list\x1b[0m\n"
        "\x1b[1;31mTests: 1 failed\x1b[0m, 41 passed, 42 total\n"
        "$ sentry-tui wrap --stage test -- npm test\n"
        "\x1b[32m  ✓ renders the story list (41 ms)\x1b[0m\n"
        "\x1b[1;32mTests: 42 passed\x1b[0m, 42 total\n"
        "$ sentry-tui wrap --stage build -- npm run build\n"
        "\x1b[36mvite v5.4.2\x1b[0m building for production...\n"
        "\x1b[32m✓ 214 modules transformed.\x1b[0m\n"
        "dist/index.html  \x1b[2m0.46 kB\x1b[0m\n"
        "\x1b[32m✓ built in 3.21s\x1b[0m\n"
        "$ "
    ),
    LOGS_STORY: (
        "2025-11-24 15:58:01 INFO  GET /api/stories 200 12ms\n"
        "2025-11-24 15:58:07 \x1b[31mERROR\x1b[0m connect ECONNREFUSED 127.0.0.1:5432\n"
        "2025-11-24 15:58:07 \x1b[31mERROR\x1b[0m pool exhausted, retrying in 5s\n"
    ),
    AGENT_POINTS: (
        "\x1b[1m codex\x1b[0m  Running tests before the migration…\n"
        "\x1b[33m  Allow command?\x1b[0m  alembic upgrade head --sql\n"
        "  \x1b[1m[y]\x1b[0m yes   \x1b[1m[n]\x1b[0m no   \x1b[1m[a]\x1b[0m always\n"
    ),
    SHELL_POINTS: (
        "$ sentry-tui wrap --stage build -- make build\n"
        "go build -o bin/points ./cmd/points\n"
        "\x1b[32mok\x1b[0m  build finished in 18.2s\n"
        "$ "
    ),
    WATCH_POINTS: (
        "\x1b[36m[watch]\x1b[0m compiling…\n"
        "\x1b[36m[watch]\x1b[0m \x1b[32mready\x1b[0m in 812 ms\n"
        "\x1b[36m[watch]\x1b[0m compiling…\n"
    ),
}


def sample_snapshot(**changes: object) -> Snapshot:
    """2 projects, 5 windows (6 panes), both runs mid-flight at an approval gate, one
    uncertain send, coloured tails and a policy warning."""
    panes = {
        p.info.ref.key: p
        for p in (
            _pane("%1", "storyapp", "agent", 0, "claude", PaneState.IDLE, 260,
                  roles=("storyapp.agent",), reason="prompt box empty"),
            _pane("%2", "storyapp", "shell", 1, "bash", PaneState.DONE, 250,
                  roles=("storyapp.shell",), reason="END exit 0"),
            _pane("%3", "storyapp", "logs", 2, "tail", PaneState.FAILED, 53,
                  reason="regex: ERROR"),
            _pane("%4", "points", "agent", 0, "codex", PaneState.WAITING, 95,
                  roles=("points.agent",), reason="codex asks: Allow command?"),
            _pane("%5", "points", "shell", 1, "bash", PaneState.IDLE, 140,
                  roles=("points.shell",)),
            _pane("%6", "points", "shell", 1, "npm", PaneState.BUSY, 30, pane_index=1),
        )
    }  # fmt: skip
    story = PipelineRun(
        run_id="r-0007",
        project="storyapp",
        status=RunStatus.RUNNING,
        started_at=NOW - 1260,
        current=3,
        stages=(
            _stage("code", StageStatus.SUCCEEDED, 1, 1260, 812, "STATUS ok: story page done"),
            _stage("test", StageStatus.SUCCEEDED, 2, 440, 96, "exit 0 (1st attempt: exit 1)"),
            _stage("build", StageStatus.SUCCEEDED, 1, 330, 72, "exit 0"),
            _stage("deploy", StageStatus.WAITING_APPROVAL, 0, 250, None, "approval #k7q2"),
        ),
    )
    points = PipelineRun(
        run_id="r-0003",
        project="points",
        status=RunStatus.RUNNING,
        started_at=NOW - 2400,
        current=3,
        stages=(
            _stage("code", StageStatus.SUCCEEDED, 1, 2400, 1500, "STATUS ok"),
            _stage("test", StageStatus.SUCCEEDED, 1, 880, 240, "exit 0"),
            _stage("build", StageStatus.SUCCEEDED, 1, 620, 38, "exit 0"),
            _stage("predeploy", StageStatus.WAITING_APPROVAL, 0, 140, None, "approval #m3x9"),
            _stage("deploy", StageStatus.PENDING),
        ),
    )
    approvals = {
        APPROVAL_STORY: Approval(
            approval_id=APPROVAL_STORY,
            project="storyapp",
            stage="deploy",
            run_id="r-0007",
            gate=Gate.BEFORE,
            created_at=NOW - 250,
            command="npm run deploy -- --prod",
            commit="3f2a9c1e07b4d2a8c5e6f1b0a9d8c7e6f5a4b3c2",
            last_result="Tests: 42 passed, 42 total",
        ),
        APPROVAL_POINTS: Approval(
            approval_id=APPROVAL_POINTS,
            project="points",
            stage="predeploy",
            run_id="r-0003",
            gate=Gate.BEFORE,
            created_at=NOW - 140,
            command="make migrate-dry-run",
            commit="9b1d04e5c3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8",
            last_result="pytest: 118 passed, 2 skipped in 31.4s",
        ),
    }
    journal = {
        UNCERTAIN_SEND: JournalEntry(
            action_id=UNCERTAIN_SEND,
            pane=SHELL_POINTS,
            text="sentry-tui wrap --stage build -- make build",
            status="uncertain",
            at=NOW - 700,
            project="points",
            stage="build",
            run_id="r-0003",
        ),
        "s-0013": JournalEntry(
            action_id="s-0013",
            pane=SHELL_STORY,
            text="npm run build",
            status="done",
            at=NOW - 330,
            project="storyapp",
            stage="build",
        ),
    }
    markers = {
        AGENT_STORY: (
            Marker("STATUS", {"stage": "code", "ok": True, "msg": "story page done"},
                   trust=Trust.SIGNED),
        ),
        SHELL_STORY: (
            Marker("START", {"stage": "test"}, trust=Trust.SIGNED),
            Marker("END", {"stage": "test", "exit": 1}, trust=Trust.SIGNED),
            Marker("START", {"stage": "test"}, trust=Trust.SIGNED),
            Marker("END", {"stage": "test", "exit": 0}, trust=Trust.SIGNED),
            Marker("END", {"stage": "build", "exit": 0}, trust=Trust.SIGNED),
        ),
        AGENT_POINTS: (
            Marker("ASK", {"msg": "run the migration dry-run first?"}, trust=Trust.UNSIGNED),
        ),
    }  # fmt: skip
    state = EngineState(
        runs={"storyapp": story, "points": points},
        approvals=approvals,
        panes=panes,
        journal=journal,
        paused=False,
    )
    snap = Snapshot(
        state=state,
        policy=Policy(),
        now=NOW,
        tails=dict(TAILS),
        markers=markers,
        last_read=NOW - 1,
        hosting=True,
        engine_alive=True,
        warnings=("points: role 'db' (session points, window db) matches no pane",),
    )
    return dataclasses.replace(snap, **changes) if changes else snap


def many_panes(n: int = 50) -> Snapshot:
    """``n`` panes across 5 sessions, for the "keeps answering keys" test and the benchmark."""
    base = sample_snapshot()
    states = list(PaneState)
    panes = {}
    for i in range(n):
        p = _pane(f"%{100 + i}", f"s{i % 5}", f"w{i // 5}", i // 5, "bash", states[i % 7], i)
        panes[p.info.ref.key] = p
    tails = {k: f"line {i}\n\x1b[32mok\x1b[0m {i}\n" for i, k in enumerate(panes)}
    return dataclasses.replace(
        base, state=dataclasses.replace(base.state, panes=panes), tails=tails, markers={}
    )


# --------------------------------------------------------------------------------------------
# Changes a test applies "elsewhere" while the UI runs


def with_state(snap: Snapshot, **changes: object) -> Snapshot:
    return dataclasses.replace(snap, state=dataclasses.replace(snap.state, **changes))


def approval_decided(snap: Snapshot, approval_id: str, status: str, by: str) -> Snapshot:
    a = snap.state.approvals[approval_id]
    decided = dataclasses.replace(a, status=status, decided_by=by, decided_at=snap.now)
    return with_state(snap, approvals={**snap.state.approvals, approval_id: decided})


def pane_removed(snap: Snapshot, pane_key: str) -> Snapshot:
    panes = {k: v for k, v in snap.state.panes.items() if k != pane_key}
    return with_state(snap, panes=panes)


class FakeClient:
    """An EngineClient held in memory: serves a Snapshot, records commands and jumps."""

    def __init__(self, snap: Snapshot | None = None) -> None:
        self._lock = threading.Lock()
        self._snap = snap if snap is not None else sample_snapshot()
        self.events: list[HumanEvent] = []
        self.jumps: list[str] = []
        self.snapshot_calls = 0
        self.fail_with: Exception | None = None
        self.snapshot_in_memory = False  # polled by a worker, as a view's file read is
        self.snapshot_threads: set[int] = set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            self.snapshot_calls += 1
            self.snapshot_threads.add(threading.get_ident())
            if self.fail_with is not None:
                raise self.fail_with
            return self._snap

    def submit(self, event: HumanEvent) -> None:
        with self._lock:
            self.events.append(event)

    def jump_to(self, pane_key: str) -> str:
        with self._lock:
            self.jumps.append(pane_key)
            pane = self._snap.state.panes.get(pane_key)
        return f"switched to {pane.info.label if pane else pane_key}"

    def set(self, snap: Snapshot) -> None:
        with self._lock:
            self._snap = snap

    def change(self, fn: Callable[[Snapshot], Snapshot]) -> None:
        with self._lock:
            self._snap = fn(self._snap)

    @property
    def current(self) -> Snapshot:
        with self._lock:
            return self._snap
